"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode``, made version-independent and
made to say what it did not count.

FlopCounterMode only counts ops that have a formula; everything else counts 0, silently. In torch
2.13 the CPU attention kernels (``_scaled_dot_product_flash_attention_for_cpu`` and its backward)
have none (pytorch/pytorch#195460), so CPU SDPA counted 0. We pass our own formulas for every SDPA
kernel through ``custom_mapping`` (overriding torch's where it has one), so the count is the same
on every torch version, device and backend. Counts are FLOPs (a multiply-add = 2), dense: masked
blocks count in full, as the kernel computes them.

``count_flops(..., elementwise=True)`` also counts elementwise arithmetic (``mul``, ``add``,
``sub``: one FLOP per output element; ``sum``: one per input element folded away), the work of
mixers whose mixing is elementwise (HSM). Use it on a mixer alone, or on a model together with
:meth:`FlopReport.flops_in` restricted to those mixers' modules: over a whole model it would also
count residual additions, RoPE and score scaling, which the analytic convention leaves out.

Nothing is dropped silently: a small dispatch mode runs under the counter and tallies every aten
op that reaches it (calls, output elements, innermost module). Each op is classified
(:func:`classify`) as ``counted`` (the counter has a formula), ``free`` (data movement, creation,
masks and indices: no floating-point arithmetic) or ``arithmetic`` (floating-point work the
counter gave 0: softmax, norms, activations, elementwise ops, ...). :meth:`FlopReport.uncounted`
lists the last kind, for the caller to report as warnings.

Module names: with ``count_flops(fn, module=m)`` the per-module counts are keyed by fully
qualified names relative to ``m`` (``""`` is ``m`` itself, ``"blocks.0.mixer"``, ...). Without
it, FlopCounterMode names modules by type (``"Block.mixer"``; every block of a stack shares that
name), which is all it can do from global module hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten

#: FlopCounterMode ops counted by ``elementwise=True`` (overload packets, short names)
ELEMENTWISE_OPS = frozenset({"mul", "mul_", "add", "add_", "sub", "sub_", "sum"})

#: aten ops (overload packets) that move, view, select or create data: no floating-point work.
#: Ops whose outputs are not floating point (comparisons, masks, integer indices) are free too.
FREE_OPS = frozenset(
    {
        # views and layout
        "view", "_unsafe_view", "_reshape_alias", "reshape", "view_as", "permute", "transpose",
        "t", "expand", "expand_as", "squeeze", "unsqueeze", "flatten", "unflatten", "narrow",
        "as_strided", "alias", "detach", "contiguous", "movedim", "diagonal", "unfold",
        "view_copy", "permute_copy", "transpose_copy", "t_copy", "expand_copy", "squeeze_copy",
        "unsqueeze_copy", "detach_copy", "lift_fresh", "lift_fresh_copy",
        # selection and gathering
        "slice", "select", "index", "_unsafe_index", "index_select", "gather", "embedding",
        "slice_copy", "select_copy", "slice_backward", "select_backward", "masked_select",
        "split", "split_with_sizes", "unsafe_split", "chunk", "unbind", "split_with_sizes_copy",
        # assembling and copying
        "cat", "stack", "clone", "copy", "copy_", "_to_copy", "to", "flip", "roll", "repeat",
        "tile", "constant_pad_nd", "pad", "masked_fill", "masked_fill_", "index_put",
        "index_put_", "scatter", "scatter_", "tril", "triu",
        # creation and random draws
        "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like", "empty_strided",
        "new_zeros", "new_ones", "new_empty", "new_empty_strided", "new_full", "full",
        "full_like", "fill", "fill_", "zero_", "arange", "eye", "scalar_tensor", "rand",
        "rand_like", "randn", "randn_like", "bernoulli", "bernoulli_", "_local_scalar_dense",
        # comparisons and boolean masks (named here for counters that do not report dtypes)
        "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not",
        "bitwise_and", "bitwise_or", "bitwise_not", "__and__", "__or__", "numpy_T",
    }
)  # fmt: skip


def _prod(xs: Any) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _sdpa_fwd(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    # (..., Lq, d) @ (..., d, Lk) and (..., Lq, Lk) @ (..., Lk, dv); GQA heads broadcast
    *batch, lq, dq = query
    lk, dv = key[-2], value[-1]
    n = _prod(batch)
    return 2 * n * lq * lk * dq + 2 * n * lq * lk * dv


def _sdpa_bwd(grad_out: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    # recompute scores, dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q: 2 + 3 bmm's
    *batch, lq, dq = query
    lk, dv = key[-2], value[-1]
    n = _prod(batch)
    return 2 * n * lq * lk * (dq + dv + dv + dq + dq)


#: SDPA kernels: forward names; each ``name + "_backward"`` is its backward (where torch has it)
SDPA_KERNELS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
)


def _sdpa_ops() -> dict[Any, Callable[..., int]]:
    mapping: dict[Any, Callable[..., int]] = {}
    for name in SDPA_KERNELS:
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = _sdpa_fwd
        if hasattr(aten, name + "_backward"):
            mapping[getattr(aten, name + "_backward")] = _sdpa_bwd
    return mapping


def _numel(shape: Any) -> int:
    return _prod(shape) if shape is not None else 1


def _pointwise(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return _numel(out_shape)


def _reduce(self_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # n inputs folded into m outputs take n - m additions
    return _numel(self_shape) - _numel(out_shape)


def _elementwise_ops() -> dict[Any, Callable[..., int]]:
    return {
        getattr(aten, name): (_reduce if name == "sum" else _pointwise) for name in ELEMENTWISE_OPS
    }


def _short(op: Any) -> str:
    """``aten.mm`` (an overload packet or its str) -> ``"mm"``."""
    return str(op).split(".")[-1]


def classify(op: str, counted: bool, floating_output: bool) -> str:
    """``"counted"``, ``"free"`` or ``"arithmetic"`` for an aten op (short packet name).

    ``counted``: the counter has a formula for it. ``floating_output``: whether it produced a
    floating-point tensor; masks, comparisons and integer index arithmetic are free.
    """
    if counted:
        return "counted"
    if op in FREE_OPS or not floating_output:
        return "free"
    return "arithmetic"


@dataclass(frozen=True)
class OpTally:
    """One aten op as dispatched inside one module: ``calls`` and output ``elements`` (the
    first tensor output's numel, summed over calls). ``module`` is the innermost module that was
    running ("" for the root or outside any module); ``category`` is :func:`classify`'s."""

    op: str
    category: str
    calls: int
    elements: int
    module: str = ""


@dataclass
class FlopReport:
    """What one FlopCounterMode run counted.

    ``total``: FLOPs of every counted op; ``by_op``: FLOPs per op (short names, ``"mm"``);
    ``by_module``: module name -> op -> FLOPs, each module including its submodules (see the
    module docstring for the names); ``ops``: every dispatched op, tallied per innermost module.
    """

    total: int
    by_op: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, dict[str, int]] = field(default_factory=dict)
    ops: list[OpTally] = field(default_factory=list)

    def uncounted(self, exclude: Callable[[OpTally], bool] | None = None) -> list[OpTally]:
        """Floating-point ops that counted 0, one entry per op (modules merged), most elements
        first. ``exclude`` drops tallies from the list (the caller accounts for them)."""
        return merge_tallies(
            t for t in self.ops if t.category == "arithmetic" and not (exclude and exclude(t))
        )

    def flops_in(self, scopes: Iterable[str], ops: Iterable[str] | None = None) -> int:
        """FLOPs counted inside the modules ``scopes`` (disjoint subtrees), for ``ops`` only
        (short names; None: every op)."""
        wanted = None if ops is None else set(ops)
        return sum(
            v
            for scope in scopes
            for op, v in self.by_module.get(scope, {}).items()
            if wanted is None or op in wanted
        )


def merge_tallies(tallies: Iterable[OpTally]) -> list[OpTally]:
    """Sum tallies of the same op across modules; most elements first (module set to "")."""
    merged: dict[str, OpTally] = {}
    for t in tallies:
        m = merged.get(t.op)
        merged[t.op] = (
            OpTally(t.op, t.category, t.calls, t.elements)
            if m is None
            else OpTally(t.op, m.category, m.calls + t.calls, m.elements + t.elements)
        )
    return sorted(merged.values(), key=lambda t: (-t.elements, t.op))


def in_scope(module: str, scopes: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``scopes`` or inside one (dotted module names)."""
    return any(s == "" or module == s or module.startswith(s + ".") for s in scopes)


class _OpTallyMode(TorchDispatchMode):
    """Counts every aten op that reaches it: calls and output elements per (module, op)."""

    def __init__(self, current_module: Callable[[], str]) -> None:
        super().__init__()
        self.current_module = current_module
        self.seen: dict[tuple[str, str], list[int]] = {}
        self.floating: dict[str, bool] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        op = _short(func._overloadpacket)
        tensors = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        elements = tensors[0].numel() if tensors else 0
        floating = any(t.dtype.is_floating_point or t.dtype.is_complex for t in tensors)
        self.floating[op] = self.floating.get(op, False) or floating
        entry = self.seen.setdefault((self.current_module(), op), [0, 0])
        entry[0] += 1
        entry[1] += elements
        return out


class _CountScope(nn.Module):
    """Runs ``fn`` as the forward of a module that owns ``root``, so that FlopCounterMode's
    module tracker names every module of ``root`` by its path (``_CountScope.root.blocks.0``)."""

    def __init__(self, root: nn.Module, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.root = root
        self.fn = fn

    def forward(self) -> Any:
        return self.fn()


_SCOPE_PREFIX = "_CountScope.root"


def _fqn(name: str, scoped: bool) -> str | None:
    """The tracker's name -> a path relative to the root (None: the wrapper, not a module)."""
    if not scoped:
        return name
    if name == _SCOPE_PREFIX:
        return ""
    if name.startswith(_SCOPE_PREFIX + "."):
        return name[len(_SCOPE_PREFIX) + 1 :]
    return None


def count_flops(
    fn: Callable[[], Any], *, elementwise: bool = False, module: nn.Module | None = None
) -> FlopReport:
    """Run ``fn()`` under FlopCounterMode (with our SDPA formulas) and return the FLOPs.

    Works on real tensors and on the ``meta`` device (nothing allocated, any length).
    ``elementwise``: also count elementwise arithmetic (see the module docstring).
    ``module``: the module ``fn`` runs (a model or a mixer), for path-named per-module counts.
    """
    mapping = _sdpa_ops()
    if elementwise:
        mapping.update(_elementwise_ops())
    mode = FlopCounterMode(display=False, custom_mapping=mapping)
    scoped = module is not None
    run = _CountScope(module, fn) if module is not None else fn

    tracker = getattr(mode, "mod_tracker", None)  # torch >= 2.3; without it, no modules

    def current_module() -> str:
        names = [n for n in (tracker.parents if tracker else ()) if n != "Global"]
        inner = max(names, key=lambda n: n.count("."), default="")
        return _fqn(inner, scoped) or ""

    # the tally mode sits under the counter: it sees the ops the counter finally runs (after
    # the counter's own decompositions), the same ones it counts or gives 0
    tally = _OpTallyMode(current_module)
    with tally, mode:
        run()
    counted = {_short(k) for k in mode.flop_registry}
    by_module: dict[str, dict[str, int]] = {}
    for name, per_op in mode.get_flop_counts().items():
        path = None if name == "Global" else _fqn(name, scoped)
        if path is not None:
            by_module[path] = {_short(k): int(v) for k, v in per_op.items()}
    ops = [
        OpTally(op, classify(op, op in counted, tally.floating[op]), calls, elements, mod)
        for (mod, op), (calls, elements) in tally.seen.items()
    ]
    counts = mode.get_flop_counts().get("Global", {})
    return FlopReport(
        total=int(mode.get_total_flops()),
        by_op={_short(k): int(v) for k, v in counts.items()},
        by_module=by_module,
        ops=ops,
    )
