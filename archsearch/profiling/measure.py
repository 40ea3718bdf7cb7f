"""The registry's profiled metrics of one model, measured by the profiler's own functions.

:func:`measure_metrics` computes what a search (or anything else) needs of
:mod:`archsearch.metrics`' profiled metrics, grouped by where their values come from
(``Metric.source``; see docs/costs.md, "Memory" and "Latency"):

=========  ======================================================================================
cost       ``params``, ``flops_fwd``, ``flops_train``, ``decode_state_bytes``,
           ``receptive_field``: analytic, always
memory     ``peak_memory_gib``: :func:`~archsearch.profiling.memory.estimate_memory` (FakeTensor,
           nothing allocated), training-step peak at the profile's batch and dtype
latency    ``latency_ms``: the forward median of :func:`~.timing.measure_latency`
decode     ``decode_ms``: its per-token decode median (at the model's decode limit if it has one)
=========  ======================================================================================

A source is measured only when one of the names asks for it (``cost`` always: it is free). The
timed sources build the model once, with the profile's device, dtype, batch, warm-up, repeats,
threads and ``compile``, and time only the parts they need, repeating until the estimate is
stable or ``time_budget_s`` is spent (:func:`time_model`). ``decode_ms`` exists only for a
model that decodes token by token: asking it of another model is a :class:`ConfigError`
(:func:`check_measurable` says so before anything is measured).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import torch

from archsearch.errors import ConfigError
from archsearch.metrics import Source, all_metrics, sources_for
from archsearch.mixers import get_mixer
from archsearch.model.config import ModelConfig
from archsearch.model.costs import ModelCost, model_cost
from archsearch.model.families import get_family
from archsearch.model.transformer import build_model, count_params, receptive_field
from archsearch.profiling.memory import build_in_dtype, estimate_memory
from archsearch.profiling.profiles import Profile
from archsearch.profiling.timing import PARTS, UNSTABLE_CV, LatencyResult, measure_latency

#: the part of :func:`measure_latency` each timed source reads
_TIMED_PARTS: dict[Source, str] = {"latency": "forward", "decode": "decode"}


def check_measurable(cfg: ModelConfig, names: Iterable[str]) -> None:
    """A one-line :class:`ConfigError` if one of ``names`` cannot be measured on this model
    (``decode_ms`` of a model that cannot decode token by token)."""
    if "decode" not in sources_for(names) or can_decode(cfg):
        return
    family = get_family(cfg.family.kind)
    if not family.supports_decode:
        what = f"family {cfg.family.kind}"
    else:
        kinds = sorted(
            {
                b.mixer.kind
                for b in cfg.layers
                if not get_mixer(b.mixer.kind).supports_decode_for(b.mixer)
            }
        )
        what = "mixer " + ", ".join(kinds) if kinds else f"family {cfg.family.kind}"
    raise ConfigError(
        "decode_ms",
        what,
        "a model that decodes token by token (this one has no incremental decoding, so it has "
        "no per-token decode latency)",
    )


def can_decode(cfg: ModelConfig) -> bool:
    """Whether the model of ``cfg`` decodes token by token (built on the meta device)."""
    return bool(build_model(cfg, device="meta").can_decode())


def measure_metrics(
    cfg: ModelConfig,
    seq_len: int,
    prof: Profile,
    names: Iterable[str],
    *,
    cost: ModelCost | None = None,
) -> dict[str, float]:
    """The profiled metrics of every source ``names`` needs (see the module docstring), in
    registry order. ``cost``: ``model_cost(cfg, seq_len)`` if the caller already has it."""
    names = list(names)
    sources = sources_for(names)
    check_measurable(cfg, names)
    cost = cost if cost is not None else model_cost(cfg, seq_len)
    values: dict[str, float] = {}
    for source, measure in _MEASURES.items():
        if source in sources:
            values.update(measure(cfg, seq_len, prof, cost))
    timed = {_TIMED_PARTS[s] for s in sources if s in _TIMED_PARTS}
    if timed:
        values.update(_timed(cfg, seq_len, prof, timed))
    wanted = [n for n, m in all_metrics("profiled").items() if m.source in sources]
    missing = [n for n in wanted if n not in values]
    if missing:  # a registered metric whose source has no measurement for it yet
        raise ValueError(f"profiled metrics {missing} are registered but never measured")
    return {n: values[n] for n in wanted}


def _cost(cfg: ModelConfig, seq_len: int, prof: Profile, cost: ModelCost) -> dict[str, float]:
    return {
        "params": count_params(cfg)["total"],
        "flops_fwd": cost.forward_exact,
        "flops_train": cost.training_exact,
        "decode_state_bytes": cost.decode_state * prof.torch_dtype.itemsize,
        "receptive_field": receptive_field(cfg, seq_len),
    }


def _memory(cfg: ModelConfig, seq_len: int, prof: Profile, cost: ModelCost) -> dict[str, float]:
    est = estimate_memory(
        cfg, seq_len, batch=prof.batch_size, dtype=prof.torch_dtype, device=prof.device
    )
    return {"peak_memory_gib": est.training_peak_bytes / 2**30}


_MEASURES: dict[Source, Callable[[ModelConfig, int, Profile, ModelCost], dict[str, float]]] = {
    "cost": _cost,
    "memory": _memory,
}


def _timed(cfg: ModelConfig, seq_len: int, prof: Profile, parts: set[str]) -> dict[str, float]:
    lat = time_model(cfg, seq_len, prof, parts=parts)
    out: dict[str, float] = {}
    if lat.forward is not None:
        out["latency_ms"] = lat.forward.median_ms
    if lat.decode_per_token is not None:
        out["decode_ms"] = lat.decode_per_token.median_ms
    return out


def time_model(
    cfg: ModelConfig, seq_len: int, prof: Profile, *, parts: Collection[str] = PARTS
) -> LatencyResult:
    """:func:`measure_latency` of a freshly built model (seed 0, in the profile's dtype on its
    device) with the profile's batch, warm-up, repeats, threads and ``compile``, repeating each
    part until its estimate is stable (estimate CV at most :data:`~.timing.UNSTABLE_CV`) or the
    rounds have taken the profile's ``time_budget_s`` (docs/costs.md, "Latency"); the model is
    freed afterwards."""
    torch.manual_seed(0)
    model = None
    try:
        model = build_in_dtype(cfg, prof.torch_dtype, prof.device)
        return measure_latency(
            model,
            seq_len,
            batch=prof.batch_size,
            device=prof.device,
            dtype=prof.torch_dtype,
            warmup=prof.warmup,
            repeats=prof.repeats,
            compile=prof.compile,
            threads=prof.threads,
            parts=parts,
            threshold=UNSTABLE_CV,
            max_time_s=prof.time_budget_s,
        )
    finally:
        del model
        if prof.device == "cuda":
            torch.cuda.empty_cache()
