"""Profile one variant at one window length: FLOPs three ways, memory, latency.

Used by ``archsearch profile`` (a table per variant) and ``archsearch scale`` (a sweep over T).
Each point is the variant configured for a window of T tokens (``max_seq_len = T``). A length the
variant cannot take, a length that does not fit in the device's memory, and a length whose timing
would exceed the profile's budget are recorded as such, with the reason; they never stop a sweep.

:class:`Sweep` runs the points of a sweep in order. FLOP counts and the memory estimate are
single-threaded Python dispatch whose cost hardly depends on T, so where nothing is timed and
nothing is measured on a device, the points run in forked worker processes, one per core (the
numbers are the same: each point builds its own model). Latency and CUDA memory are measured
one point at a time, in this process.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError
from archsearch.model.config import ModelConfig, load_model_config_located
from archsearch.model.costs import model_cost
from archsearch.model.families import get_family
from archsearch.model.transformer import count_params, receptive_field
from archsearch.profiling.flops import compare_flops
from archsearch.profiling.measure import time_model
from archsearch.profiling.memory import estimate_memory, measure_memory
from archsearch.profiling.profiles import Profile, device_peak

METRICS = ("flops", "memory", "latency")


@dataclass
class Variant:
    """A model config to profile, with the name it has in tables, plots and CSV files."""

    name: str
    cfg: ModelConfig
    source: str = ""
    locate: Any = None  # maps a ConfigError back to the YAML file and line


def load_variants(paths: list[Path], sets: Sequence[str] = ()) -> list[Variant]:
    """Load model YAMLs (with ``--set`` changes); a variant is named by its ``name:`` (or file
    stem), made unique."""
    out: list[Variant] = []
    seen: dict[str, int] = {}
    for p in paths:
        cfg, locate = load_model_config_located(p, sets)
        name = cfg.name or Path(p).stem
        if name in seen:
            seen[name] += 1
            name = f"{name}-{seen[name]}"
        else:
            seen[name] = 1
        out.append(Variant(name, cfg, str(p), locate))
    return out


def parse_metrics(text: str) -> set[str]:
    got = {m.strip() for m in text.split(",") if m.strip()}
    bad = sorted(got - set(METRICS))
    if bad or not got:
        raise ConfigError("metrics", text, "a comma-separated subset of " + ", ".join(METRICS))
    return got


@dataclass
class LatencyBudget:
    """Per-variant memory of the last timed length, to predict the next one's cost."""

    last_seconds: float | None = None
    last_flops: int | None = None
    stopped: str | None = None  # once a length is too long, longer ones are too


@dataclass
class Point:
    """One (variant, T): a flat ``row`` for CSV files and ``details`` for tables and JSON."""

    variant: str
    seq_len: int
    status: str  # "ok" | "invalid"
    row: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: ops some FLOP counter gave 0: op -> {op, counters, calls, elements, why}
    uncounted: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: ConfigError | None = None  # why the variant cannot take this length


def at_length(v: Variant, T: int) -> ModelConfig:
    """The variant built for a window of T tokens; raises ConfigError (located) if it cannot."""
    cfg = v.cfg.replace(max_seq_len=T)
    try:
        cfg.check_seq_len(T)
        model_cost(cfg, T)  # mixers check their own constraints (segment | T, ...)
    except ConfigError as e:
        raise (v.locate(e) if v.locate else e) from None
    return cfg


def profile_point(
    v: Variant,
    T: int,
    prof: Profile,
    metrics: set[str],
    *,
    fvcore: bool = True,
    budget: LatencyBudget | None = None,
) -> Point:
    """Everything asked for about variant ``v`` at window length ``T``."""
    base = {"variant": v.name, "seq_len": T}
    try:
        cfg = at_length(v, T)
    except ConfigError as e:
        pt = Point(v.name, T, "invalid", {**base, "status": "invalid", "note": str(e)})
        pt.error = e
        return pt
    cost = model_cost(cfg, T)
    params = count_params(cfg)
    row: dict[str, Any] = {
        **base,
        "status": "ok",
        "note": "",
        "family": cfg.family.kind,
        "params": params["total"],
        "params_non_embedding": params["non_embedding"],
        "flop_exponent_theory": get_family(cfg.family.kind).flop_exponent(cfg),
        "flops_fwd": cost.forward_exact,
        "flops_fwd_dense": cost.forward_dense,
        "flops_train": cost.training_exact,
        "decode_state_numbers": cost.decode_state,
        "receptive_field": receptive_field(cfg, T),
    }
    pt = Point(v.name, T, "ok", row, {"params": params})
    if "flops" in metrics:
        _flops(pt, cfg, T, prof, fvcore)
    mem_estimate = None
    if "memory" in metrics or ("latency" in metrics and prof.memory_bytes is not None):
        mem_estimate = _memory(pt, cfg, T, prof, record="memory" in metrics)
    if "latency" in metrics:
        _latency(pt, cfg, T, prof, budget or LatencyBudget(), mem_estimate, cost)
    return pt


# ---- FLOPs ----


def _flops(pt: Point, cfg: ModelConfig, T: int, prof: Profile, fvcore: bool) -> None:
    cmp = compare_flops(cfg, T, batch=1, backward=True, fvcore=fvcore)
    pt.details["flops"] = cmp.to_dict()
    pt.row.update(flops_columns(cmp))
    for c in cmp.counters.values():
        if c.error:
            pt.warnings.append(f"{c.tool} could not run: {c.error}")
        if c.checked and c.flops is not None and not c.ok:
            pt.warnings.append(f"{c.tool} differs from {c.reference_name}: {c.reason}")
        for w in c.warnings:
            u = pt.uncounted.setdefault(
                w.op,
                {
                    "op": w.op,
                    "counters": [],
                    "calls": w.calls,
                    "elements": w.elements,
                    "why": w.why,
                },
            )
            u["counters"].append(SHORT.get(c.name, c.name))


#: counter name (archsearch.profiling.flops) -> CSV column
FLOP_COLUMNS = {
    "fcm": "flops_fcm_forward",
    "fcm_fwd_bwd": "flops_fcm_forward_backward",
    "fvcore": "flops_fvcore",
    "fvcore_default": "flops_fvcore_as_shipped",
}


#: the ops of dense layers (projections, MLP, LM head); every other counted op is token mixing:
#: the attention core (bmm, SDPA) and the elementwise mixing of HSM-style mixers
LINEAR_OPS = frozenset({"mm", "addmm", "mv", "addmv"})

#: short counter names for tables
SHORT = {
    "fcm": "FCM",
    "fcm_matmul": "FCM matmul",
    "fcm_fwd_bwd": "FCM fwd+bwd",
    "fvcore": "fvcore+handles",
    "fvcore_default": "fvcore shipped",
}


def flops_columns(cmp: Any) -> dict[str, Any]:
    """The counted FLOPs of one point (per sequence) as CSV columns."""
    cols: dict[str, Any] = {}
    for name, col in FLOP_COLUMNS.items():
        c = cmp.counters.get(name)
        if c is not None:
            cols[col] = c.flops
    fcm = cmp.counters.get("fcm")
    if fcm is not None and fcm.flops is not None:
        by_op = fcm.details.get("by_op", {})
        cols["flops_mixing_fcm"] = sum(v for op, v in by_op.items() if op not in LINEAR_OPS)
    if cmp.missed_by_fvcore_default is not None:
        cols["flops_missed_by_fvcore_as_shipped"] = cmp.missed_by_fvcore_default
    cols["flops_counters_agree"] = cmp.ok
    return cols


# ---- memory ----


def _memory(pt: Point, cfg: ModelConfig, T: int, prof: Profile, *, record: bool) -> Any:
    est = estimate_memory(cfg, T, batch=prof.batch_size, dtype=prof.torch_dtype, device=prof.device)
    if not record:
        return est
    pt.details["memory_estimate"] = est.to_dict()
    pt.row.update(
        {
            "mem_params_bytes": est.params_bytes,
            "mem_inference_peak_bytes": est.inference_peak_bytes,
            "peak_memory_gib": est.training_peak_bytes / 2**30,
            "mem_activation_bytes": est.activation_bytes,
            "mem_decode_state_bytes": est.decode_state_bytes,
            "mem_decode_state_bytes_per_token": est.decode_state_bytes_per_token,
        }
    )
    if prof.device == "cuda":
        _measured_memory(pt, cfg, T, prof, est)
    return est


def _too_big(prof: Profile, est: Any) -> str | None:
    limit = prof.memory_bytes
    if limit is not None and est is not None and est.training_peak_bytes > limit:
        return (
            f"out of memory (estimated {est.training_peak_bytes / 2**30:.1f} GiB > "
            f"{prof.memory_gib} GiB)"
        )
    return None


def _measured_memory(pt: Point, cfg: ModelConfig, T: int, prof: Profile, est: Any) -> None:
    import torch

    reason = _too_big(prof, est)
    if reason is None:
        try:
            got = measure_memory(cfg, T, batch=prof.batch_size, dtype=prof.torch_dtype)
        except torch.cuda.OutOfMemoryError:
            reason = "out of memory (CUDA)"
    if reason is not None:
        pt.row["mem_measured_status"] = reason
        return
    pt.details["memory_measured"] = got.to_dict()
    pt.row.update(
        {
            "mem_measured_status": "ok",
            "mem_measured_inference_peak_bytes": got.inference_peak_bytes,
            "mem_measured_train_peak_bytes": got.training_peak_bytes,
            "mem_estimate_error": est.training_peak_bytes / got.training_peak_bytes - 1,
        }
    )


# ---- latency ----


def _skip_reason(
    seq_len: int, prof: Profile, budget: LatencyBudget, est: Any, flops: int
) -> str | None:
    if budget.stopped:
        return budget.stopped
    if prof.latency_max_seq_len is not None and seq_len > prof.latency_max_seq_len:
        return f"not timed: T > latency_max_seq_len = {prof.latency_max_seq_len}"
    if budget.last_seconds is not None and budget.last_flops:
        predicted = budget.last_seconds * flops / budget.last_flops
        if predicted > prof.time_budget_s:
            return (
                f"not timed: a training step would take about {predicted:.3g} s "
                f"> time_budget_s = {prof.time_budget_s}"
            )
    return _too_big(prof, est)


def _latency(
    pt: Point,
    cfg: ModelConfig,
    T: int,
    prof: Profile,
    budget: LatencyBudget,
    est: Any,
    cost: Any,
) -> None:
    import torch

    reason = _skip_reason(T, prof, budget, est, cost.training_dense)
    if reason is None:
        try:
            lat = time_model(cfg, T, prof)
        except torch.cuda.OutOfMemoryError:
            reason = "out of memory (CUDA)"
    if reason is not None:
        if budget.stopped is None and not reason.startswith("not timed: T >"):
            # a length too slow or too big: every longer one is too
            budget.stopped = f"not timed: {reason.removeprefix('not timed: ')} at T = {T:,}"
        pt.row["latency_status"] = reason
        return
    pt.details["latency"] = lat.to_dict()
    B = prof.batch_size
    peak = device_peak(prof, threads=lat.threads)
    row: dict[str, Any] = {"latency_status": "ok", "threads": lat.threads}
    row |= {"peak_tflops": peak.tflops, "peak_source": peak.source}
    for key, t, flops in (
        ("fwd", lat.forward, cost.forward_exact),
        ("train", lat.train_step, cost.training_exact),
        ("decode", lat.decode_per_token, None),
    ):
        if t is None:
            continue
        row[MEDIAN_COLUMNS[key]] = t.median_ms
        row[f"{key}_ms_iqr"] = t.iqr_ms
        row[f"{key}_ms_min"] = t.min_ms
        row[f"{key}_cv"] = t.cv
        row[f"{key}_estimate_cv"] = t.estimate_cv
        row[f"{key}_unstable"] = t.unstable
        row[f"{key}_calls"] = t.repeats
        if flops is not None:
            tflops = B * flops / (t.median_ms / 1e3) / 1e12
            row[f"{key}_tflops"] = tflops
            if peak.tflops:
                row[f"{key}_mfu"] = tflops / peak.tflops
    pt.row.update(row)
    if lat.train_step is not None:
        budget.last_seconds = lat.train_step.median_ms / 1e3
        budget.last_flops = cost.training_dense


#: the column of each timing's median: the registry's metric where there is one
MEDIAN_COLUMNS = {"fwd": "latency_ms", "train": "train_ms_median", "decode": "decode_ms"}


def upper_fit_points(lengths: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    """The upper half (at least two) of the points with positive values: the asymptotic fit."""
    pts = [(t, y) for t, y in zip(lengths, values, strict=True) if y and y > 0 and math.isfinite(y)]
    if len(pts) < 2:
        return [], []
    k = max(2, math.ceil(len(pts) / 2))
    pts = pts[-k:]
    return [t for t, _ in pts], [y for _, y in pts]


# ---- a sweep, in parallel where nothing is timed ----


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_run_in_parallel(prof: Profile, metrics: set[str]) -> bool:
    """Whether points may run at once: nothing timed, no CUDA memory measurement, and on Linux,
    where ``fork`` is safe with torch loaded (the workers inherit the variants and torch)."""
    import torch

    if "latency" in metrics or ("memory" in metrics and prof.device == "cuda"):
        return False
    if torch.cuda.is_initialized():  # a forked child cannot use it
        return False
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


#: what a forked worker profiles with: (variants, profile, metrics, fvcore)
_WORK: tuple[list[Variant], Profile, set[str], bool] | None = None


def _worker_init(variants: list[Variant], prof: Profile, metrics: set[str], fvcore: bool) -> None:
    import torch

    global _WORK
    _WORK = (variants, prof, metrics, fvcore)
    torch.set_num_threads(1)  # the work is single-threaded dispatch; the cores are the pool's


def _worker_point(job: tuple[int, int]) -> Point:
    assert _WORK is not None
    variants, prof, metrics, fvcore = _WORK
    return profile_point(variants[job[0]], job[1], prof, metrics, fvcore=fvcore)


class Sweep:
    """Every variant at every length (None: each variant's ``max_seq_len``), in that order.

    Use it as a context manager, then iterate :meth:`points`. Where
    :func:`can_run_in_parallel`, the pool of ``workers`` processes (default: one per core, at
    most one per point; fewer than two: none) is forked on entry, after this process has
    profiled the first point (so the workers inherit its warmed-up dispatch caches); start the
    pool before any thread that writes (a progress bar). A length a variant cannot take is
    recorded here, never sent to a worker (its :class:`Point` keeps the ConfigError).
    """

    def __init__(
        self,
        variants: list[Variant],
        lengths: Sequence[int] | None,
        prof: Profile,
        metrics: set[str],
        *,
        fvcore: bool = True,
        workers: int | None = None,
    ) -> None:
        self.variants = variants
        self.prof = prof
        self.metrics = metrics
        self.fvcore = fvcore
        self.jobs = [(i, T) for i, v in enumerate(variants) for T in lengths or [v.cfg.max_seq_len]]
        self._valid = [j for j in self.jobs if self._fits(*j)]
        wanted = cpu_cores() if workers is None else workers
        self.workers = min(wanted, len(self._valid) - 1)
        if self.workers < 2 or not can_run_in_parallel(prof, metrics):
            self.workers = 0
        self._pool: Any = None
        self._first: Point | None = None

    def _fits(self, i: int, T: int) -> bool:
        try:
            at_length(self.variants[i], T)
        except ConfigError:
            return False
        return True

    def __enter__(self) -> Sweep:
        if self.workers:
            self._first = self._point(self._valid[0])
            ctx = multiprocessing.get_context("fork")
            args = (self.variants, self.prof, self.metrics, self.fvcore)
            self._pool = ctx.Pool(self.workers, initializer=_worker_init, initargs=args)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()  # results are all in, or the sweep was interrupted
            self._pool.join()
            self._pool = None

    def _point(self, job: tuple[int, int], budget: LatencyBudget | None = None) -> Point:
        v = self.variants[job[0]]
        return profile_point(v, job[1], self.prof, self.metrics, fvcore=self.fvcore, budget=budget)

    def points(self) -> Iterator[Point]:
        """The points in order (variant by variant, lengths in the given order)."""
        if self._pool is None:
            budgets: dict[int, LatencyBudget] = {}
            for job in self.jobs:
                yield self._point(job, budgets.setdefault(job[0], LatencyBudget()))
            return
        rest = self._pool.imap(_worker_point, self._valid[1:], chunksize=1)
        valid = set(self._valid)
        for job in self.jobs:
            if job not in valid:
                yield self._point(job)  # invalid: recorded with its error, nothing measured
            elif job == self._valid[0]:
                assert self._first is not None
                yield self._first
            else:
                yield next(rest)
