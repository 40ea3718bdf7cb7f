"""fvcore ``FlopCountAnalysis``, with handles for every op our models use, converted to FLOPs.

fvcore traces the module with the JIT tracer (``torch.jit._get_trace_graph``) and applies one
handle per ``aten::`` node; it sees the forward pass only. Tracing works on the ``meta`` device:
shapes propagate and nothing is allocated, so any length counts in a fraction of a second (longer
where a kernel loops in Python over traced sizes: ECP's segment loop at 1M tokens takes ~3 s).
As shipped it has four problems for our models (docs/costs.md, "Counters and how they fail"):

* it reports **MACs** (one per multiply-add), not FLOPs;
* ``aten::scaled_dot_product_attention`` has no handle: the attention core, the T² term of
  softmax attention, counts 0 (an "unsupported operator" log line);
* elementwise mixing (HSM's ``a ⊙ u_t + b ⊙ u_{t−d}``) counts 0, while norms count
  ``5·numel`` MACs (``layer_norm``), which our convention leaves out;
* its ``matmul`` handle computes ``numel(A)·B[-1]``, which is wrong when B has batch dimensions A
  broadcasts over (12× too low for ``(5, 8) @ (3, 4, 8, 6)``), and fails on a 1-D operand; its
  ``einsum`` handle builds a float64 numpy array of every operand's full shape (gigabytes of
  address space at long T) and takes half of numpy's naive count, which is not the MACs for an
  outer product or a three-operand chain.

:func:`count_fvcore` replaces the default table by :data:`HANDLES` (documented below, one row per
op) and returns FLOPs under our convention (docs/costs.md, "FLOP conventions"): matmul-type handles
count MACs and are doubled; elementwise handles count FLOPs directly and are kept only inside
``elementwise_scopes`` (the modules of mixers whose analytic formula declares elementwise mixing),
found with fvcore's ``by_module_and_operator`` breakdown. Everything fvcore gives 0 is returned,
never dropped: ``unsupported`` (fvcore's own ``unsupported_ops()``, calls per op) and ``recorded``
(calls and output elements of every op a handle saw, per innermost module, classified like
:func:`archsearch.profiling.counter.classify`). fvcore's log warnings are silenced; the caller
reports these lists instead.

:func:`count_fvcore_default` runs fvcore as shipped (its default handles), for the report's
"what fvcore alone says" column.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from archsearch.profiling.counter import OpTally, classify

#: an fvcore handle: (JIT input values, JIT output values) -> count
Handle = Callable[[list[Any], list[Any]], float]


# ---- reading JIT values ----------------------------------------------------------------------


def _shape(value: Any) -> list[int] | None:
    """Sizes of a JIT value that is a tensor of known shape, else None."""
    return list(value.type().sizes()) if value.isCompleteTensor() else None


def _prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _float_numel(value: Any) -> int:
    """Elements of a floating-point tensor value; 0 for integer/bool tensors and scalars (shape
    arithmetic under tracing, masks, indices: no floating-point work)."""
    shape = _shape(value)
    if shape is None:
        return 0
    dtype = value.type().dtype()
    return _prod(shape) if dtype is not None and dtype.is_floating_point else 0


# ---- matmul-type handles: MACs -----------------------------------------------------------------


def linear_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::linear(x, W, b)``: every row of x times W (out × in); the bias is not counted."""
    x, w = _shape(inputs[0]), _shape(inputs[1])
    assert x is not None and w is not None
    return _prod(x[:-1]) * _prod(w)


def matmul_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``matmul``/``mm``/``bmm``: each output element is one dot product of the contraction length
    (A's last dimension). Correct for broadcast batch dimensions and 1-D operands."""
    a, out = _shape(inputs[0]), _shape(outputs[0])
    assert a is not None and out is not None
    return _prod(out) * a[-1]


def addmm_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``addmm(bias, A, B)``/``baddbmm``: the product only (A is the second input)."""
    a, out = _shape(inputs[1]), _shape(outputs[0])
    assert a is not None and out is not None
    return _prod(out) * a[-1]


def einsum_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::einsum(equation, operands)``, contracted pairwise left to right as ``torch.einsum``
    does without opt_einsum: a pair that contracts an index is one batched matmul costing the
    product of the sizes of the indices it keeps or contracts (indices only one operand has and
    nothing later needs are summed away first: free). A pair without a contracted index (an
    outer or elementwise product) is what torch runs as ``mul``: elementwise, 0 here as in
    FlopCounterMode."""
    equation = inputs[0].toIValue().replace(" ", "")
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    lhs, out = equation.split("->") if "->" in equation else (equation, None)
    terms = lhs.split(",")
    if out is None:  # implicit output: the indices that appear once, sorted
        out = "".join(sorted(c for c in set(lhs) if c.isalpha() and lhs.count(c) == 1))
    size: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        assert shape is not None and "." not in term, "einsum with ellipsis is not supported"
        size.update(zip(term, shape, strict=True))
    macs, acc = 0, set(terms[0])
    for i, term in enumerate(terms[1:], start=1):
        later = set(out).union(*terms[i + 1 :])
        cur = set(term)
        # summed-out-alone indices drop before the product: keep what is shared or needed later
        acc = {c for c in acc if c in cur or c in later}
        cur = {c for c in cur if c in acc or c in later}
        if (acc & cur) - later:  # some index is contracted: a matmul
            macs += _prod(size[c] for c in acc | cur)
        acc = {c for c in acc | cur if c in later}
    return macs


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::scaled_dot_product_attention(q, k, v, ...)``: QKᵀ and PV, dense (masked or causal
    blocks count in full, as the kernels compute them and as FlopCounterMode counts them)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    assert q is not None and k is not None and v is not None
    *batch, lq, dq = q
    return _prod(batch) * lq * k[-2] * (dq + v[-1])


# ---- elementwise handles: FLOPs ----------------------------------------------------------------


def pointwise_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """``mul``/``add``/``sub``: one FLOP per floating-point output element."""
    return _float_numel(outputs[0])


def reduction_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """``sum``: n inputs folded into m outputs take n − m additions."""
    n = _float_numel(inputs[0])
    return n - _float_numel(outputs[0]) if n else 0


def _dropout_active(inputs: list[Any]) -> bool:
    """``aten::dropout(x, p, train)``: whether it does any work (p > 0 in training)."""
    p, train = inputs[1].toIValue(), inputs[2].toIValue()
    return bool(train) and (p is None or float(p) > 0)


def zero_count(inputs: list[Any], outputs: list[Any]) -> int:
    """Counts 0; registered so that the op is recorded (see :data:`RECORDED_ZERO`)."""
    return 0


@dataclass(frozen=True)
class FvcoreHandle:
    """One row of :data:`HANDLES`.

    ``unit``: what the handle returns, ``"mac"`` (doubled into FLOPs) or ``"flop"``.
    ``scope``: ``"all"`` counts everywhere; ``"elementwise_mixers"`` counts only inside the
    modules of mixers that declare elementwise mixing (elsewhere it is recorded, not counted).
    """

    op: str
    handle: Handle
    unit: Literal["mac", "flop"]
    scope: Literal["all", "elementwise_mixers"]
    what: str


_MM = "output elements × contraction length (broadcast batch dims and 1-D operands handled)"
_ELT = "one FLOP per output element, inside elementwise-mixing mixers only"

#: The handles :func:`count_fvcore` registers (fvcore's defaults are cleared first).
HANDLES: tuple[FvcoreHandle, ...] = (
    FvcoreHandle("aten::linear", linear_macs, "mac", "all", "rows × in × out; bias not counted"),
    FvcoreHandle("aten::matmul", matmul_macs, "mac", "all", _MM),
    FvcoreHandle("aten::mm", matmul_macs, "mac", "all", _MM),
    FvcoreHandle("aten::bmm", matmul_macs, "mac", "all", _MM),
    FvcoreHandle("aten::addmm", addmm_macs, "mac", "all", "the product only; bias not counted"),
    FvcoreHandle("aten::baddbmm", addmm_macs, "mac", "all", "the product only"),
    FvcoreHandle("aten::einsum", einsum_macs, "mac", "all", "pairwise, left to right"),
    FvcoreHandle(
        "aten::scaled_dot_product_attention",
        sdpa_macs,
        "mac",
        "all",
        "QKᵀ and PV, dense: Lq·Lk·(dq + dv) per batch·head",
    ),
    FvcoreHandle("aten::mul", pointwise_flops, "flop", "elementwise_mixers", _ELT),
    FvcoreHandle("aten::mul_", pointwise_flops, "flop", "elementwise_mixers", _ELT),
    FvcoreHandle("aten::add", pointwise_flops, "flop", "elementwise_mixers", _ELT),
    FvcoreHandle("aten::add_", pointwise_flops, "flop", "elementwise_mixers", _ELT),
    FvcoreHandle("aten::sub", pointwise_flops, "flop", "elementwise_mixers", _ELT),
    FvcoreHandle("aten::sub_", pointwise_flops, "flop", "elementwise_mixers", _ELT),
    FvcoreHandle(
        "aten::sum", reduction_flops, "flop", "elementwise_mixers", "n − m additions, same scope"
    ),
)

#: Floating-point ops fvcore's built-in ignore list counts as free without a word; we register
#: zero-count handles for them so they are recorded and reported like any other uncounted op.
RECORDED_ZERO: tuple[str, ...] = (
    "aten::relu",
    "aten::relu_",
    "aten::clamp",
    "aten::clamp_",
    "aten::max",
    "aten::floor",
    "aten::remainder",
    "aten::floor_divide",
    "aten::dropout",
)


def _short(op: str) -> str:
    return op.split("::")[-1]


class _Recorder:
    """Wraps handles to tally every node they see: calls and output elements per (innermost
    module, op), and whether the op produced floating-point values."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[int]] = {}
        self.floating: dict[str, bool] = {}

    def wrap(self, op: str, handle: Handle) -> Handle:
        def recorded(inputs: list[Any], outputs: list[Any]) -> float:
            module = outputs[0].node().scopeName().split("/")[-1] if outputs else ""
            elements = _float_numel(outputs[0]) if outputs else 0
            if op == "aten::dropout" and not _dropout_active(inputs):
                elements = 0  # p = 0 or eval: the identity
            self.floating[op] = self.floating.get(op, False) or elements > 0
            entry = self.seen.setdefault((module, op), [0, 0])
            entry[0] += 1
            entry[1] += elements
            return handle(inputs, outputs)

        return recorded

    def tallies(self, counted: Callable[[str, str], bool]) -> list[OpTally]:
        return [
            OpTally(
                op,
                classify(_short(op), counted(module, op), self.floating[op]),
                calls,
                elements,
                module,
            )
            for (module, op), (calls, elements) in self.seen.items()
        ]


@dataclass
class FvcoreReport:
    """fvcore with :data:`HANDLES`, under our FLOP convention.

    ``flops``: the total (matmul-type MACs × 2 + elementwise FLOPs inside ``scopes``);
    ``by_op``: FLOPs per op as counted in that total (short names, ``"linear"``);
    ``by_module``: module -> op -> FLOPs (each module including its submodules; elementwise ops
    everywhere, as fvcore saw them); ``unsupported``: op -> calls with no handle (fvcore's
    ``unsupported_ops()``); ``recorded``: every op a handle saw (see the module docstring);
    ``scopes``: the elementwise-mixing modules; ``seconds``: wall time of trace + analysis.
    """

    flops: int
    by_op: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, dict[str, int]] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)
    recorded: list[OpTally] = field(default_factory=list)
    scopes: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass
class FvcoreDefaultReport:
    """fvcore as shipped: ``macs`` (what it reports), ``flops = 2·macs``, ``by_op`` in MACs, and
    its ``unsupported`` ops (op -> calls)."""

    macs: int
    by_op: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def flops(self) -> int:
        return 2 * self.macs


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """fvcore calls ``torch.jit.script`` (on import), which warns that it is deprecated; that
    says nothing about the count."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated")
        yield


def _analysis(module: nn.Module, inputs: tuple[Any, ...]) -> Any:
    """A quiet FlopCountAnalysis: no log lines, no tracer warnings (we report ourselves)."""
    with _quiet():  # importing fvcore.nn scripts its focal loss
        from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = FlopCountAnalysis(module, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


def _in_scopes(module: str, scopes: Sequence[str]) -> bool:
    return any(s == "" or module == s or module.startswith(s + ".") for s in scopes)


def count_fvcore(
    module: nn.Module, inputs: tuple[Any, ...], *, elementwise_scopes: Sequence[str] = ()
) -> FvcoreReport:
    """Trace ``module(*inputs)`` and count FLOPs with :data:`HANDLES` (see the module docstring).

    ``elementwise_scopes``: module paths (``"blocks.0.mixer"``; ``""`` for ``module`` itself)
    whose elementwise ops count. Use meta-device inputs to count without allocating.
    """
    t0 = time.perf_counter()
    recorder = _Recorder()
    analysis = _analysis(module, inputs).clear_op_handles()
    for h in HANDLES:
        analysis.set_op_handle(h.op, recorder.wrap(h.op, h.handle))
    for op in RECORDED_ZERO:
        analysis.set_op_handle(op, recorder.wrap(op, zero_count))
    with _quiet():
        per_module = analysis.by_module_and_operator()
    unsupported = dict(analysis.unsupported_ops())
    seconds = time.perf_counter() - t0

    scale = {_short(h.op): 2 if h.unit == "mac" else 1 for h in HANDLES}
    scoped = {_short(h.op) for h in HANDLES if h.scope == "elementwise_mixers"}
    by_module = {
        name: {op: int(v * scale.get(op, 0)) for op, v in counter.items() if op in scale}
        for name, counter in per_module.items()
    }
    by_op: dict[str, int] = {}
    for op, v in by_module.get("", {}).items():
        if op not in scoped:
            by_op[op] = v
    for scope in elementwise_scopes:
        for op, v in by_module.get(scope, {}).items():
            if op in scoped:
                by_op[op] = by_op.get(op, 0) + v

    def counted(mod: str, op: str) -> bool:
        name = _short(op)
        if name not in scale:
            return False
        return name not in scoped or _in_scopes(mod, elementwise_scopes)

    return FvcoreReport(
        flops=sum(by_op.values()),
        by_op=by_op,
        by_module=by_module,
        unsupported=unsupported,
        recorded=recorder.tallies(counted),
        scopes=tuple(elementwise_scopes),
        seconds=seconds,
    )


def count_fvcore_default(module: nn.Module, inputs: tuple[Any, ...]) -> FvcoreDefaultReport:
    """fvcore as shipped (default handles only): MACs, per-op MACs and unsupported ops."""
    t0 = time.perf_counter()
    analysis = _analysis(module, inputs)
    with _quiet():
        macs = analysis.total()
    report = FvcoreDefaultReport(
        macs=int(macs),
        by_op={op: int(v) for op, v in analysis.by_operator().items()},
        unsupported=dict(analysis.unsupported_ops()),
    )
    report.seconds = time.perf_counter() - t0
    return report
