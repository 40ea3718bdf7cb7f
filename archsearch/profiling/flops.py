"""FLOPs three ways: the analytic formulas, FlopCounterMode and fvcore, reconciled.

Every FLOP counter fails somewhere (docs/costs.md, "Counters and how they fail"): fvcore reports
MACs and counts SDPA and elementwise ops as 0; FlopCounterMode counts 0, silently, for ops without a
formula; both count causal attention dense. This module runs the three on the same model (or mixer)
on the ``meta`` device, where nothing is allocated and any length can be counted, and says where
they differ:

* **analytic**: each mixer's own formula (``TokenMixer.flops``; ``model_cost`` for a model),
  exact and dense-masked, split into the matmul-visible part and declared elementwise mixing;
* **FlopCounterMode** forward (``fcm``): matmul/SDPA ops plus the elementwise ops inside mixers
  whose formula declares elementwise mixing, i.e. the convention (docs/costs.md, "FLOP
  conventions"); the same run's matmul/SDPA ops alone (``fcm_matmul``), what a plain counter sees;
  and forward+backward (``fcm_fwd_bwd``, matmul level), checked against the forward's by-op
  breakdown times :data:`BACKWARD_FACTOR`;
* **fvcore** with our handles (``fvcore``, :mod:`archsearch.profiling.fvcore_counter`), in FLOPs;
  and fvcore as shipped (``fvcore_default``, ``2 ×`` its MACs), shown for what it misses (the
  attention core: SDPA's T² term) and what it adds (``5·numel`` MACs per LayerNorm). It is
  informative only: it is expected to disagree.

``fcm``, ``fcm_matmul`` and ``fvcore`` must agree with the analytic dense count within
:data:`TOLERANCE` (the dense count is what the implementation computes and what a counter sees;
the exact count is reported beside it). Each counter's result lists the ops it gave 0 as warnings
(op, calls, output elements, why), and a counter outside the tolerance gets a ``reason``: which
mixer modules differ from their formula, and the largest uncounted ops.

**Backward.** Per op, backward FLOPs are a fixed multiple of the forward ones
(:data:`BACKWARD_FACTOR`): 2 for a matmul (the gradient with respect to each operand is one
matmul of the same size) and 2.5 for a fused SDPA kernel (its backward recomputes QKᵀ, then dP,
dV, dQ, dK: 5 matmuls against the forward's 2; ``_sdpa_bwd`` in counter.py counts
``3·dq + 2·dv`` per pair against ``dq + dv``). What legitimately differs from "training = 3 ×
forward": (1) on the meta device SDPA runs its math fallback (on CPU tensors, masked or causal,
the fused ``_scaled_dot_product_flash_attention_for_cpu``), which FlopCounterMode sees as
``bmm``s: 2 forward, 4 backward, so 2×, not 2.5×; the counter follows whatever kernel runs;
(2) a matmul whose operands do not need gradients gets fewer backward matmuls (a mixer's input,
if it does not require grad: the mixer comparison makes its input require grad, as an
activation inside a model does); (3) the elementwise mixing is outside a matmul-level count,
forward and backward, so ``fcm_fwd_bwd`` is ``3 ×`` the matmul-visible forward, not ``3 ×``
the convention's forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from archsearch.mixers import (
    MixerConfig,
    MixerContext,
    MixerFlops,
    TokenMixer,
    build_mixer,
    get_mixer,
)
from archsearch.model.config import ModelConfig
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model
from archsearch.profiling import fvcore_counter
from archsearch.profiling.counter import (
    ELEMENTWISE_OPS,
    FREE_OPS,
    SDPA_KERNELS,
    FlopReport,
    OpTally,
    count_flops,
    in_scope,
    merge_tallies,
)

#: largest relative difference from the reference counted as agreement
TOLERANCE = 0.01

#: backward FLOPs per forward FLOP of each op FlopCounterMode counts (others: 2, as a matmul)
BACKWARD_FACTOR: dict[str, Fraction] = {
    "mm": Fraction(2),
    "addmm": Fraction(2),
    "bmm": Fraction(2),
    "baddbmm": Fraction(2),
    **{kernel: Fraction(5, 2) for kernel in SDPA_KERNELS},
}


# ---- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyticFlops:
    """The formulas' forward FLOPs for the whole batch (a multiply-add = 2).

    ``dense``/``exact``: with masked score blocks counted in full / unmasked pairs only.
    ``matmul``: the part a matmul-level counter sees (dense); ``elementwise``: declared
    elementwise mixing; ``core_dense``/``core_exact``: the attention core alone (QKᵀ and PV).
    """

    exact: int
    dense: int
    matmul: int
    elementwise: int
    core_exact: int
    core_dense: int
    seconds: float = 0.0
    train_dense: int | None = None
    """the training (train-mode) forward where it differs from the inference one (S2-Attn's
    ``inference: full``); None: the same"""
    train_exact: int | None = None

    @property
    def training_dense(self) -> int:
        """The model-FLOPs convention: a training step is 3 × the training forward pass."""
        return 3 * (self.dense if self.train_dense is None else self.train_dense)

    @property
    def training_exact(self) -> int:
        return 3 * (self.exact if self.train_exact is None else self.train_exact)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exact": self.exact,
            "dense": self.dense,
            "matmul": self.matmul,
            "elementwise": self.elementwise,
            "core_exact": self.core_exact,
            "core_dense": self.core_dense,
            "training_exact": self.training_exact,
            "training_dense": self.training_dense,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class OpWarning:
    """An op a counter gave 0 FLOPs: ``calls``, output ``elements`` (None where the counter does
    not say) and ``why``."""

    op: str
    calls: int
    elements: int | None
    why: str

    def __str__(self) -> str:
        elements = "" if self.elements is None else f", {self.elements:,} elements"
        return f"{self.op} ({self.calls} calls{elements}): {self.why}"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "calls": self.calls, "elements": self.elements, "why": self.why}


@dataclass(frozen=True)
class CounterResult:
    """One counter's FLOPs against its reference.

    ``checked``: whether it must agree within :data:`TOLERANCE` (fvcore as shipped need not).
    ``flops`` is None when the counter could not run (``error`` says why).
    """

    name: str
    tool: str
    flops: int | None
    reference: int
    reference_name: str
    checked: bool = True
    seconds: float = 0.0
    warnings: tuple[OpWarning, ...] = ()
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def rel_diff(self) -> float | None:
        """``(flops − reference) / reference``; None if the counter did not run."""
        if self.flops is None:
            return None
        return _rel(self.flops, self.reference)

    @property
    def ok(self) -> bool:
        return self.rel_diff is not None and abs(self.rel_diff) <= TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "flops": self.flops,
            "reference": self.reference,
            "reference_name": self.reference_name,
            "rel_diff": self.rel_diff,
            "ok": self.ok,
            "checked": self.checked,
            "seconds": self.seconds,
            "reason": self.reason,
            "error": self.error,
            "warnings": [w.to_dict() for w in self.warnings],
            "details": self.details,
        }


@dataclass(frozen=True)
class FlopsComparison:
    """The analytic count and every counter's, for one model or mixer at one length.

    ``counters``: ``fcm``, ``fcm_matmul``, ``fcm_fwd_bwd``, ``fvcore``, ``fvcore_default`` (the
    ones that ran). ``missed_by_fvcore_default``: FLOPs (our convention) of the ops shipped fvcore
    has no handle for, per op in ``missed_by_fvcore_default_by_op`` (for softmax attention, the
    SDPA core); ``extra_in_fvcore_default``: FLOPs it counts that the convention leaves out
    (norms). None where fvcore did not run.
    """

    subject: str
    seq_len: int
    batch: int
    device: str
    analytic: AnalyticFlops
    counters: dict[str, CounterResult]
    missed_by_fvcore_default: int | None = None
    missed_by_fvcore_default_by_op: dict[str, int] = field(default_factory=dict)
    extra_in_fvcore_default: int | None = None
    extra_in_fvcore_default_by_op: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every checked counter agrees with its reference within the tolerance."""
        return all(c.ok for c in self.counters.values() if c.checked)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.counters.values() if c.reason]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (``--json`` output)."""
        return {
            "subject": self.subject,
            "seq_len": self.seq_len,
            "batch": self.batch,
            "device": self.device,
            "tolerance": TOLERANCE,
            "ok": self.ok,
            "analytic": self.analytic.to_dict(),
            "counters": {name: c.to_dict() for name, c in self.counters.items()},
            "missed_by_fvcore_default": self.missed_by_fvcore_default,
            "missed_by_fvcore_default_by_op": self.missed_by_fvcore_default_by_op,
            "extra_in_fvcore_default": self.extra_in_fvcore_default,
            "extra_in_fvcore_default_by_op": self.extra_in_fvcore_default_by_op,
        }

    def format(self, *, warnings: bool = False) -> str:
        """A plain-text report: one line per counter, then what shipped fvcore misses, the
        reasons for any disagreement and (``warnings=True``) every uncounted op."""
        a = self.analytic
        lines = [
            f"FLOPs three ways: {self.subject}, T={self.seq_len:,}, batch {self.batch} "
            f"({self.device} device)",
            f"  analytic forward: exact {_g(a.exact)}, dense {_g(a.dense)} = matmul "
            f"{_g(a.matmul)} + elementwise {_g(a.elementwise)}; attention core (dense) "
            f"{_g(a.core_dense)}; training (3 × dense) {_g(a.training_dense)}",
        ]
        for c in self.counters.values():
            if c.flops is None:
                lines.append(f"  {c.tool:<46} failed: {c.error}")
                continue
            mark = ("ok" if c.ok else "DIFFERS") if c.checked else "(info)"
            lines.append(
                f"  {c.tool:<46} {_g(c.flops):>12}  vs {c.reference_name} {_g(c.reference)}: "
                f"{100 * (c.rel_diff or 0.0):+.3f}% {mark}  [{c.seconds:.3f} s]"
            )
        bwd = self.counters.get("fcm_fwd_bwd")
        if bwd is not None and bwd.flops is not None:
            lines.append(
                f"  training: FlopCounterMode forward+backward {_g(bwd.flops)} vs 3 × analytic "
                f"dense {_g(a.training_dense)}: "
                f"{100 * bwd.details['rel_diff_to_training_convention']:+.3f}% (matmul level; "
                "fused SDPA backward is 2.5 × forward, its meta/math path 2 ×)"
            )
        if self.missed_by_fvcore_default is not None:
            missed = _by_op_text(self.missed_by_fvcore_default_by_op)
            extra = _by_op_text(self.extra_in_fvcore_default_by_op)
            lines.append(
                f"  fvcore alone misses {_g(self.missed_by_fvcore_default)} FLOPs"
                + (f" ({missed})" if missed else "")
                + f" and adds {_g(self.extra_in_fvcore_default or 0)} the convention leaves out"
                + (f" ({extra})" if extra else "")
            )
        lines += [f"  why: {r}" for r in self.reasons]
        if warnings:
            for c in self.counters.values():
                lines += [f"  warning [{c.name}]: {w}" for w in c.warnings]
        return "\n".join(lines)


# ---- what is compared ------------------------------------------------------------------------


@dataclass
class _Subject:
    """A module to count, how to run it, and the analytic cost of each mixer module in it."""

    name: str
    module: nn.Module
    forward: Callable[[], Any]
    forward_backward: Callable[[], Any]
    inputs: tuple[torch.Tensor, ...]
    mixers: dict[str, tuple[str, MixerFlops]]  # module path -> (kind, analytic × batch)
    #: the train-mode forward where it differs from ``forward`` (None: the same), whose by-op
    #: count predicts the forward+backward count
    train_forward: Callable[[], Any] | None = None

    @property
    def scopes(self) -> list[str]:
        """Modules of mixers whose formula declares elementwise mixing."""
        return [path for path, (_, f) in self.mixers.items() if f.elementwise > 0]


def _times(f: MixerFlops, batch: int) -> MixerFlops:
    return MixerFlops(
        f.projections * batch, f.core_exact * batch, f.core_dense * batch, f.elementwise * batch
    )


def _mixer_modules(model: nn.Module, seq_len: int, batch: int) -> dict[str, tuple[str, MixerFlops]]:
    """Every TokenMixer inside ``model`` with its inference (eval-mode) formula at ``seq_len``
    (for the whole batch)."""
    return {
        name: (mod.cfg.kind, _times(type(mod).inference_flops(mod.cfg, mod.ctx, seq_len), batch))
        for name, mod in model.named_modules()
        if isinstance(mod, TokenMixer)
    }


def compare_flops(
    cfg: ModelConfig,
    seq_len: int,
    *,
    batch: int = 1,
    backward: bool = True,
    fvcore: bool = True,
    device: str = "meta",
) -> FlopsComparison:
    """Count the forward FLOPs of ``cfg``'s model (any family) three ways and reconcile them.

    The model is built on ``device`` (``"meta"``: nothing allocated; ``"cpu"`` runs the real
    kernels, e.g. the fused SDPA ones) and fed ``batch`` windows of ``seq_len`` token ids.
    ``backward``: also count ``model.loss(idx, idx).backward()``; ``fvcore``: also run fvcore.
    The forward is counted in eval mode (the inference forward, ``forward_*``), the backward in
    train mode (the training forward, ``training_*``).
    """
    t0 = time.perf_counter()
    cost = model_cost(cfg, seq_len)
    b = batch
    analytic = AnalyticFlops(
        exact=cost.forward_exact * b,
        dense=cost.forward_dense * b,
        matmul=cost.counter_visible * b,
        elementwise=sum(lc.mixer.elementwise for lc in cost.layers) * b,
        core_exact=sum(lc.mixer.core_exact for lc in cost.layers) * b,
        core_dense=sum(lc.mixer.core_dense for lc in cost.layers) * b,
        seconds=time.perf_counter() - t0,
        train_dense=cost.training_forward_dense * b,
        train_exact=cost.training_forward_exact * b,
    )
    model = build_model(cfg, device=device)
    idx = torch.zeros(batch, seq_len, dtype=torch.long, device=device)
    model.eval()  # the module stays in eval mode outside the train-mode runs (fvcore traces it)

    def in_train_mode(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            model.train()
            try:
                return fn()
            finally:
                model.eval()

        return run

    differs = cost.training_counter_visible != cost.counter_visible
    subject = _Subject(
        name=cfg.name or f"{cfg.family.kind} model",
        module=model,
        forward=lambda: model(idx),
        forward_backward=in_train_mode(lambda: model.loss(idx, idx).backward()),
        inputs=(idx,),
        mixers=_mixer_modules(model, cfg.family.stack_seq_len(seq_len), batch),
        train_forward=in_train_mode(lambda: model(idx)) if differs else None,
    )
    return _compare(subject, analytic, seq_len, batch, device, backward=backward, fvcore=fvcore)


def compare_mixer_flops(
    mixer_cfg: MixerConfig,
    ctx: MixerContext,
    seq_len: int,
    *,
    batch: int = 1,
    backward: bool = True,
    fvcore: bool = True,
    device: str = "meta",
) -> FlopsComparison:
    """As :func:`compare_flops`, for one mixer module on a ``(batch, seq_len, d_model)`` input.

    For the backward count the input requires grad, as an activation inside a model does, so
    the first projection's input gradient is counted too.
    """
    mixer_cfg.check(ctx, seq_len)
    t0 = time.perf_counter()
    f = _times(get_mixer(mixer_cfg.kind).flops(mixer_cfg, ctx, seq_len), batch)
    analytic = AnalyticFlops(
        exact=f.exact,
        dense=f.dense,
        matmul=f.matmul_dense,
        elementwise=f.elementwise,
        core_exact=f.core_exact,
        core_dense=f.core_dense,
        seconds=time.perf_counter() - t0,
    )
    with torch.device(device):
        mixer = build_mixer(mixer_cfg, ctx)
        x = torch.randn(batch, seq_len, ctx.d_model)
    x_grad = x.detach().requires_grad_(True)
    subject = _Subject(
        name=f"{mixer_cfg.kind} mixer",
        module=mixer,
        forward=lambda: mixer(x),
        forward_backward=lambda: mixer(x_grad).sum().backward(),
        inputs=(x,),
        mixers={"": (mixer_cfg.kind, f)},
    )
    return _compare(subject, analytic, seq_len, batch, device, backward=backward, fvcore=fvcore)


def _compare(
    s: _Subject,
    analytic: AnalyticFlops,
    seq_len: int,
    batch: int,
    device: str,
    *,
    backward: bool,
    fvcore: bool,
) -> FlopsComparison:
    fwd, fcm, fcm_matmul = _fcm_forward(s, analytic)
    counters = {"fcm": fcm, "fcm_matmul": fcm_matmul}
    if backward:
        counters["fcm_fwd_bwd"] = _fcm_forward_backward(s, analytic, fwd)
    fv: dict[str, Any] = {}
    if fvcore:
        counters["fvcore"], report = _fvcore(s, analytic)
        counters["fvcore_default"], fv = _fvcore_default(s, analytic, report)
    return FlopsComparison(
        subject=s.name,
        seq_len=seq_len,
        batch=batch,
        device=device,
        analytic=analytic,
        counters=counters,
        **fv,
    )


# ---- FlopCounterMode -------------------------------------------------------------------------


def _matmul_ops(by_op: dict[str, int]) -> dict[str, int]:
    return {op: v for op, v in by_op.items() if op not in ELEMENTWISE_OPS}


def _fcm_forward(
    s: _Subject, analytic: AnalyticFlops
) -> tuple[FlopReport, CounterResult, CounterResult]:
    """One forward run with the elementwise formulas on: the convention count and the
    matmul-only count come from its per-module, per-op breakdown."""
    t0 = time.perf_counter()
    rep = count_flops(s.forward, elementwise=True, module=s.module)
    seconds = time.perf_counter() - t0
    scopes = s.scopes
    matmul = sum(_matmul_ops(rep.by_op).values())
    convention = matmul + rep.flops_in(scopes, ELEMENTWISE_OPS)

    def outside(t: OpTally) -> bool:
        return t.op in ELEMENTWISE_OPS and not in_scope(t.module, scopes)

    warnings = _tally_warnings(rep.ops, "FlopCounterMode has no formula: counted 0") + [
        OpWarning(
            t.op,
            t.calls,
            t.elements,
            "elementwise op outside elementwise-mixing mixers: "
            "not counted (README FLOP convention)",
        )
        for t in merge_tallies(t for t in rep.ops if outside(t))
    ]

    def module_flops(path: str) -> int:
        ops = rep.by_module.get(path, {})
        inside = path in scopes
        return sum(v for op, v in ops.items() if op not in ELEMENTWISE_OPS or inside)

    mixing = {op: rep.flops_in(scopes, [op]) for op in ELEMENTWISE_OPS if rep.by_op.get(op)}
    fcm = _result(
        "fcm",
        "FlopCounterMode forward (convention)",
        convention,
        analytic.dense,
        "analytic dense",
        seconds,
        warnings,
        per_module=_per_module(s, module_flops, lambda f: f.dense),
        details={"by_op": _matmul_ops(rep.by_op) | {op: v for op, v in mixing.items() if v}},
    )
    matmul_warnings = _tally_warnings(rep.ops, "FlopCounterMode has no formula: counted 0") + [
        OpWarning(t.op, t.calls, t.elements, "elementwise: not counted at matmul level")
        for t in merge_tallies(t for t in rep.ops if t.op in ELEMENTWISE_OPS)
    ]
    fcm_matmul = _result(
        "fcm_matmul",
        "FlopCounterMode forward (matmul/SDPA ops)",
        matmul,
        analytic.matmul,
        "analytic matmul-visible",
        seconds,
        matmul_warnings,
        per_module=_per_module(
            s,
            lambda p: sum(_matmul_ops(rep.by_module.get(p, {})).values()),
            lambda f: f.matmul_dense,
        ),
        details={
            "by_op": _matmul_ops(rep.by_op),
            "missed_elementwise_mixing": analytic.dense - matmul,
        },
    )
    return rep, fcm, fcm_matmul


def expected_forward_backward(forward_by_op: dict[str, int]) -> int:
    """Forward + backward FLOPs a matmul-level counter should see, from the forward's by-op
    breakdown: each op's forward FLOPs times ``1 + BACKWARD_FACTOR`` (2 where unlisted)."""
    total = sum(v * (1 + BACKWARD_FACTOR.get(op, Fraction(2))) for op, v in forward_by_op.items())
    return round(total)


def _fcm_forward_backward(s: _Subject, analytic: AnalyticFlops, fwd: FlopReport) -> CounterResult:
    t0 = time.perf_counter()
    rep = count_flops(s.forward_backward, module=s.module)
    seconds = time.perf_counter() - t0
    if s.train_forward is not None:  # the backward follows the training forward
        fwd = count_flops(s.train_forward, module=s.module)
    forward_by_op = _matmul_ops(fwd.by_op)
    expected = expected_forward_backward(forward_by_op)
    forward = sum(forward_by_op.values())
    details = {
        "forward_by_op": forward_by_op,
        "forward_backward_by_op": rep.by_op,
        "backward": rep.total - forward,
        "backward_factors": {op: str(BACKWARD_FACTOR.get(op, 2)) for op in forward_by_op},
        "training_convention": analytic.training_dense,
        "rel_diff_to_training_convention": _rel(rep.total, analytic.training_dense),
    }
    result = _result(
        "fcm_fwd_bwd",
        "FlopCounterMode forward+backward (matmul)",
        rep.total,
        expected,
        "forward by-op × (1 + backward factor)",
        seconds,
        _tally_warnings(rep.ops, "FlopCounterMode has no formula: counted 0"),
        details=details,
    )
    if result.ok:
        return result
    why = (
        f"{result.reason}. Forward by op {forward_by_op}; forward+backward by op {rep.by_op}; "
        f"backward factors {details['backward_factors']} (a matmul whose operands need no "
        "gradient, or a kernel whose backward differs, changes the factor)"
    )
    return _replace_reason(result, why)


# ---- fvcore --------------------------------------------------------------------------------


def _fvcore(s: _Subject, analytic: AnalyticFlops) -> tuple[CounterResult, Any]:
    tool = "fvcore + archsearch handles (FLOPs)"
    try:
        rep = fvcore_counter.count_fvcore(s.module, s.inputs, elementwise_scopes=s.scopes)
    except Exception as e:  # a trace that fails is reported, not raised
        return _failed("fvcore", tool, analytic.dense, "analytic dense", e), None
    scoped = {
        h.op.split("::")[-1] for h in fvcore_counter.HANDLES if h.scope == "elementwise_mixers"
    }
    warnings = _unsupported_warnings(rep.unsupported) + [
        OpWarning(
            t.op,
            t.calls,
            t.elements,
            "elementwise op outside elementwise-mixing mixers: not counted (README FLOP convention)"
            if t.op.split("::")[-1] in scoped
            else "fvcore counts it as free: counted 0",
        )
        for t in merge_tallies(t for t in rep.recorded if t.category == "arithmetic")
    ]

    def module_flops(path: str) -> int:
        ops = rep.by_module.get(path, {})
        inside = path in rep.scopes
        return sum(v for op, v in ops.items() if op not in scoped or inside)

    result = _result(
        "fvcore",
        tool,
        rep.flops,
        analytic.dense,
        "analytic dense",
        rep.seconds,
        warnings,
        per_module=_per_module(s, module_flops, lambda f: f.dense),
        details={"by_op": rep.by_op},
    )
    return result, rep


def _fvcore_default(
    s: _Subject, analytic: AnalyticFlops, ours: Any
) -> tuple[CounterResult, dict[str, Any]]:
    tool = "fvcore as shipped (2 × MACs)"
    try:
        rep = fvcore_counter.count_fvcore_default(s.module, s.inputs)
    except Exception as e:
        return _failed("fvcore_default", tool, analytic.dense, "analytic dense", e, False), {}
    warnings = tuple(_unsupported_warnings(rep.unsupported))
    details: dict[str, Any] = {"macs": rep.macs, "by_op_macs": rep.by_op}
    fv: dict[str, Any] = {}
    if ours is not None:
        handled = {h.op.split("::")[-1] for h in fvcore_counter.HANDLES}
        unsupported = {op.split("::")[-1] for op in rep.unsupported}
        missed = {op: v for op, v in ours.by_op.items() if op in unsupported and v}
        extra = {op: 2 * v for op, v in rep.by_op.items() if op not in handled and v}
        other = rep.flops - (ours.flops - sum(missed.values()) + sum(extra.values()))
        details["handle_differences"] = other
        fv = {
            "missed_by_fvcore_default": sum(missed.values()),
            "missed_by_fvcore_default_by_op": missed,
            "extra_in_fvcore_default": sum(extra.values()),
            "extra_in_fvcore_default_by_op": extra,
        }
    result = CounterResult(
        name="fvcore_default",
        tool=tool,
        flops=rep.flops,
        reference=analytic.dense,
        reference_name="analytic dense",
        checked=False,
        seconds=rep.seconds,
        warnings=warnings,
        details=details,
    )
    if not result.ok:
        result = _replace_reason(result, _default_reason(result, fv, details))
    return result, fv


def _default_reason(result: CounterResult, fv: dict[str, Any], details: dict[str, Any]) -> str:
    head = (
        f"{result.tool} is {100 * (result.rel_diff or 0.0):+.2f}% off analytic dense: it "
        f"reports {details['macs']:,} MACs"
    )
    if not fv:
        return head
    parts = [head]
    if fv["missed_by_fvcore_default"]:
        ops = ", ".join(f"{op} {v:,}" for op, v in fv["missed_by_fvcore_default_by_op"].items())
        missed = fv["missed_by_fvcore_default"]
        parts.append(f"misses {missed:,} FLOPs of ops it has no handle for ({ops})")
    if fv["extra_in_fvcore_default"]:
        ops = ", ".join(f"{op} {v:,}" for op, v in fv["extra_in_fvcore_default_by_op"].items())
        extra = fv["extra_in_fvcore_default"]
        parts.append(f"counts {extra:,} FLOPs the convention leaves out ({ops})")
    if details["handle_differences"]:
        parts.append(
            f"its own handles differ from ours by {details['handle_differences']:+,} FLOPs"
        )
    return "; ".join(parts)


# ---- helpers -------------------------------------------------------------------------------


def _rel(value: int, reference: int) -> float:
    if reference == 0:
        return 0.0 if value == 0 else float("inf")
    return (value - reference) / reference


def _g(flops: int) -> str:
    return f"{flops / 1e9:,.4f} G" if flops >= 1e7 else f"{flops:,}"


def _by_op_text(by_op: dict[str, int]) -> str:
    return ", ".join(f"{op} {_g(v)}" for op, v in by_op.items())


def _unsupported_warnings(unsupported: dict[str, int]) -> list[OpWarning]:
    """fvcore's unsupported ops (op -> calls), less the data movement among them (embedding
    look-ups, padding, masks), which is free by the convention and by :data:`FREE_OPS`."""
    return [
        OpWarning(op, calls, None, "fvcore has no handle (unsupported operator): counted 0")
        for op, calls in sorted(unsupported.items())
        if op.split("::")[-1] not in FREE_OPS
    ]


def _tally_warnings(tallies: Sequence[OpTally], why: str) -> list[OpWarning]:
    return [
        OpWarning(t.op, t.calls, t.elements, why)
        for t in merge_tallies(t for t in tallies if t.category == "arithmetic")
    ]


def _per_module(
    s: _Subject, counted: Callable[[str], int], formula: Callable[[MixerFlops], int]
) -> list[tuple[str, str, int, int]]:
    """(path, kind, counted, analytic) for every mixer module whose count differs."""
    rows = []
    for path, (kind, f) in s.mixers.items():
        c, a = counted(path), formula(f)
        if c != a:
            rows.append((path, kind, c, a))
    return rows


def _result(
    name: str,
    tool: str,
    flops: int,
    reference: int,
    reference_name: str,
    seconds: float,
    warnings: Sequence[OpWarning],
    *,
    per_module: Sequence[tuple[str, str, int, int]] | None = None,
    details: dict[str, Any] | None = None,
) -> CounterResult:
    result = CounterResult(
        name=name,
        tool=tool,
        flops=flops,
        reference=reference,
        reference_name=reference_name,
        seconds=seconds,
        warnings=tuple(warnings),
        details=details or {},
    )
    if result.ok:
        return result
    return _replace_reason(result, _reason(result, per_module))


def _reason(result: CounterResult, per_module: Sequence[tuple[str, str, int, int]] | None) -> str:
    """Which counter differs, by how much, in which mixer modules, and what it did not count."""
    assert result.flops is not None
    parts = [
        f"{result.tool} is {100 * (result.rel_diff or 0.0):+.2f}% off {result.reference_name} "
        f"({result.flops:,} vs {result.reference:,})"
    ]
    worst = sorted(per_module or (), key=lambda r: -abs(r[2] - r[3]))
    if per_module is not None and worst:
        shown = ", ".join(
            f"{path or '(the mixer)'} ({kind}) counted {c:,} vs formula {a:,}"
            for path, kind, c, a in worst[:3]
        )
        parts.append(f"mixers that differ: {shown}")
        rest = (result.flops - result.reference) - sum(c - a for _, _, c, a in worst)
        if rest:
            parts.append(f"outside the mixers: {rest:+,}")
    elif per_module is not None:
        parts.append("every mixer module matches its formula: the difference is outside them")
    arith = [w for w in result.warnings if w.elements]
    if arith:
        shown = ", ".join(f"{w.op} ({w.calls} calls, {w.elements:,} elements)" for w in arith[:3])
        parts.append(f"largest uncounted ops: {shown}")
    return "; ".join(parts)


def _replace_reason(result: CounterResult, reason: str) -> CounterResult:
    return replace(result, reason=reason)


def _failed(
    name: str, tool: str, reference: int, reference_name: str, e: Exception, checked: bool = True
) -> CounterResult:
    error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    return CounterResult(
        name=name,
        tool=tool,
        flops=None,
        reference=reference,
        reference_name=reference_name,
        checked=checked,
        reason=f"{tool} could not run: {error}",
        error=error,
    )
