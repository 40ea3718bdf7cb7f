"""A study's trials as plain records, the Pareto front and the hypervolume (no torch here).

Each trial's outcome lives in its Optuna user attributes (see :mod:`archsearch.search.study`), so
any tool that reads the storage (``optuna-dashboard``, the ``optuna`` CLI, this module) sees the
same thing:

==============  ==============================================================================
outcome         Optuna state and meaning
==============  ==============================================================================
complete        COMPLETE: trained on the full budget; values are the objectives
stopped         PRUNED: stopped by successive halving at a lower rung (``fidelity`` says where)
infeasible      PRUNED: a profiled constraint is broken, so it was not trained
invalid         PRUNED: the sampled combination cannot be built (constraint ``valid`` = 1)
diverged        FAIL: the training loss became NaN or infinite
failed          FAIL: out of memory or another error while profiling or training
interrupted     FAIL: Ctrl-C (or the process died); its parameters are queued again
surplus         FAIL: two workers raced for the study's last trial; not run, not counted
==============  ==============================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from archsearch.metrics import get_metric, is_metric

OUTCOMES = (
    "complete",
    "stopped",
    "infeasible",
    "invalid",
    "diverged",
    "failed",
    "interrupted",
    "surplus",
)
FINISHED = frozenset(OUTCOMES) - {"interrupted", "surplus"}
"""outcomes that count towards ``--trials`` (an interrupted trial is run again)"""


@dataclass
class TrialRecord:
    number: int
    state: str
    outcome: str
    reason: str
    label: str
    """family and mixer kinds, e.g. ``ecp``, ``hsm+softmax``, ``perceiver_ar``: what the report
    groups and colours trials by"""
    params: dict[str, Any]
    values: dict[str, float] = field(default_factory=dict)
    """objective metric -> value (complete trials)"""
    metrics: dict[str, float] = field(default_factory=dict)
    """every measured metric: profiled ones, and the final held-out ones"""
    constraints: dict[str, float] = field(default_factory=dict)
    fidelity: list[dict[str, Any]] = field(default_factory=list)
    tokens: int | None = None
    train_seconds: float | None = None
    seconds: float | None = None
    model: dict[str, Any] = field(default_factory=dict)
    duplicate_of: int | None = None
    """an earlier trial with the same parameters, whose result this one reuses"""
    family: str = ""
    """the model family: ``decoder``, ``perceiver_ar``, ``v1_double``, ..."""
    mixers: str = ""
    """the stack's mixers and how many layers each has, e.g. ``hsm×3+softmax×1``, ``ecp×4``"""

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())

    @property
    def measured_at(self) -> str:
        """Where the trial's quality metrics were measured: ``full`` (the full budget, a
        complete trial), ``rungK`` (its last rung: a stopped, diverged or failed trial) or
        ``partial`` (no rung reached)."""
        if self.outcome == "complete":
            return "full"
        return f"rung{self.fidelity[-1]['rung']}" if self.fidelity else "partial"

    def row(self, objectives: Sequence[str]) -> dict[str, Any]:
        """One flat CSV row. A quality metric's column says the fidelity it was measured at
        (``bits_per_byte@full``, ``bits_per_byte@rung0``); a profiled one needs no training and
        keeps its name (``flops_fwd``)."""
        row: dict[str, Any] = {
            "number": self.number,
            "state": self.state,
            "outcome": self.outcome,
            "label": self.label,
            "family": self.family,
            "mixers": self.mixers,
            "feasible": self.feasible,
        }
        measured = {**self.metrics, **self.values}
        for m in objectives:
            row[metric_column(m, self.measured_at)] = measured.get(m)
        for k, v in sorted(measured.items()):
            row.setdefault(metric_column(k, self.measured_at), v)
        for k, v in sorted(self.constraints.items()):
            row[f"constraint:{k}"] = v
        last = self.fidelity[-1] if self.fidelity else None
        row["rung"] = None if last is None else last["rung"]
        row["trained_tokens"] = self.tokens
        row["train_seconds"] = self.train_seconds
        row["seconds"] = self.seconds
        for k, v in sorted(self.params.items()):
            row[f"param:{k}"] = v
        row["duplicate_of"] = self.duplicate_of
        row["reason"] = self.reason
        return row


def is_fidelity_free(metric: str) -> bool:
    """A registered profiled metric (cost, memory, latency): measured without training, so
    the same whatever budget a trial reached."""
    return is_metric(metric) and get_metric(metric).kind == "profiled"


def metric_column(metric: str, measured_at: str) -> str:
    """The trials.csv column of ``metric`` measured at ``measured_at`` (``full``, ``rung0``,
    ...): ``bits_per_byte@full``; a profiled metric's column is its name."""
    return metric if is_fidelity_free(metric) else f"{metric}@{measured_at}"


def split_column(column: str) -> tuple[str, str | None]:
    """``bits_per_byte@rung0`` -> (``bits_per_byte``, ``rung0``); ``flops_fwd`` -> (it, None)."""
    metric, sep, where = column.rpartition("@")
    return (metric, where) if sep and metric else (column, None)


#: trials.csv's leading columns, and the order of the groups after them
_HEAD = ("number", "state", "outcome", "label", "family", "mixers", "feasible")
_TAIL = ("rung", "trained_tokens", "train_seconds", "seconds")


def trial_columns(rows: Sequence[dict[str, Any]], objectives: Sequence[str]) -> list[str]:
    """The columns of trials.csv in a stable order whatever the trials' outcomes: the head,
    the objectives (each fidelity: ``@full`` first, then the rungs), every other metric,
    ``constraint:*``, the rung and times, ``param:*``, ``duplicate_of`` and ``reason``."""
    keys = list(dict.fromkeys(k for row in rows for k in row))

    def rank(k: str) -> tuple[int, int, str, int, int]:
        if k in _HEAD:
            return (0, _HEAD.index(k), "", 0, 0)
        metric, where = split_column(k)
        at = (0, 0) if where in (None, "full") else (1, _rung_number(where))
        if metric in objectives:
            return (1, list(objectives).index(metric), "", *at)
        if k in _TAIL:
            return (4, _TAIL.index(k), "", 0, 0)
        if k in ("duplicate_of", "reason"):
            return (6, k == "reason", "", 0, 0)
        group = {"constraint": 3, "param": 5}.get(k.partition(":")[0] if ":" in k else "", 2)
        return (group, 0, metric if group == 2 else k, *at)

    return sorted(keys, key=rank)


def _rung_number(where: str) -> int:
    digits = where.removeprefix("rung")
    return int(digits) if digits.isdigit() else 10**9


def count_finished(trials: Sequence[Any]) -> int:
    """Trials (Optuna ``FrozenTrial``) whose outcome counts towards ``--trials``."""
    return sum(t.user_attrs.get("outcome") in FINISHED for t in trials)


def outcome_counts(trials: Sequence[Any]) -> dict[str, int]:
    """How many trials have each outcome (the Optuna state, lower-cased, when none yet)."""
    out: dict[str, int] = {}
    for t in trials:
        o = t.user_attrs.get("outcome", t.state.name.lower())
        out[o] = out.get(o, 0) + 1
    return out


def common_failure(trials: Sequence[Any]) -> str | None:
    """When trials ended but none completed, because each was invalid, infeasible, diverged or
    failed: one line saying so, with the most common reason; else None. A study that ends so has
    no result, and says why once (not once per trial)."""
    ended = [t for t in trials if t.user_attrs.get("outcome") in FINISHED]
    bad = {"invalid", "infeasible", "diverged", "failed"}
    if not ended or any(t.user_attrs.get("outcome") not in bad for t in ended):
        return None
    outcomes = "/".join(sorted({t.user_attrs["outcome"] for t in ended}))
    reasons: dict[str, int] = {}
    for t in ended:
        r = str(t.user_attrs.get("reason", "")) or "no reason recorded"
        reasons[r] = reasons.get(r, 0) + 1
    top, k = max(reasons.items(), key=lambda kv: kv[1])
    if len(reasons) == 1:
        return f"all {len(ended)} trials {outcomes}: {top}"
    return f"all {len(ended)} trials {outcomes}; the most common reason ({k}): {top}"


def feasible_front(
    records: Sequence[TrialRecord], objectives: Sequence[str], directions: Sequence[str]
) -> list[TrialRecord]:
    """The complete, feasible, non-duplicate records that no other such record dominates."""
    cand = [
        r
        for r in records
        if r.outcome == "complete" and r.values and r.feasible and r.duplicate_of is None
    ]
    pts = [to_min([r.values[m] for m in objectives], directions) for r in cand]
    return [cand[i] for i in pareto_front(pts)]


def _mixer_kind(mixer: dict[str, Any]) -> str:
    return str(mixer["kind"])


def model_family(model: dict[str, Any]) -> str:
    """The model family of a model's data: ``decoder`` (the default), ``perceiver_ar``, ..."""
    fam = model.get("family", "decoder")
    return str(fam.get("kind", "decoder") if isinstance(fam, dict) else fam)


def model_mixers(
    model: dict[str, Any], mixer_label: Callable[[dict[str, Any]], str] = _mixer_kind
) -> str:
    """The stack's mixers and how many layers each has, by name: ``hsm×3+softmax×1``, or
    ``softmax×2`` for a plain stack (names as :func:`model_label` gives them)."""
    counts: dict[str, int] = {}
    for b in model.get("layers", []):
        name = mixer_label(b["mixer"])
        counts[name] = counts.get(name, 0) + 1
    return "+".join(f"{k}×{n}" for k, n in sorted(counts.items()))


def model_label(
    model: dict[str, Any], mixer_label: Callable[[dict[str, Any]], str] = _mixer_kind
) -> str:
    """``ecp``, ``hsm+softmax``, ``perceiver_ar``, ``v2_split/ecp``, ``s2attn(infer=full)``
    (family, then the mixers' labels unless they are plain softmax).

    ``mixer_label`` names one layer's mixer from its data: the search passes
    :func:`archsearch.mixers.mixer_label` (the config's label, e.g. ``s2attn(infer=full)``);
    the default, the kind, keeps this module free of torch."""
    fam = model_family(model)
    kinds = sorted({mixer_label(b["mixer"]) for b in model.get("layers", [])})
    mixers = "+".join(kinds)
    if fam == "decoder":
        return mixers
    return fam if mixers == "softmax" else f"{fam}/{mixers}"


def to_min(values: Sequence[float], directions: Sequence[str]) -> list[float]:
    """Objective values as a minimisation vector (maximised ones negated)."""
    return [v if d == "minimize" else -v for v, d in zip(values, directions, strict=True)]


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points (minimisation); duplicates are all kept."""
    out = []
    for i, p in enumerate(points):
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i):
            out.append(i)
    return out


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Volume dominated by ``points`` and bounded by ``ref`` (minimisation; exact, any
    dimension, by slicing along the last objective; fine for the few hundred points of a
    study). Points not strictly better than ``ref`` in every objective add nothing."""
    pts = [list(p) for p in points if all(x < r for x, r in zip(p, ref, strict=True))]
    if not pts:
        return 0.0
    d = len(ref)
    if d == 1:
        return ref[0] - min(p[0] for p in pts)
    if d == 2:
        pts.sort()
        area, best_y = 0.0, ref[1]
        for x, y in pts:
            if y < best_y:
                area += (ref[0] - x) * (best_y - y)
                best_y = y
        return area
    pts.sort(key=lambda p: p[-1])
    vol = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        if top > p[-1]:
            vol += (top - p[-1]) * hypervolume([q[:-1] for q in pts[: i + 1]], ref[:-1])
    return vol


def reference_point(points: Sequence[Sequence[float]], margin: float = 0.1) -> list[float]:
    """The nadir of ``points`` pushed out by ``margin`` of each objective's range (or of its
    magnitude when the range is zero), so the extreme points still add volume."""
    cols = list(zip(*points, strict=True))
    ref = []
    for c in cols:
        lo, hi = min(c), max(c)
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        ref.append(hi + margin * span)
    return ref


def hypervolume_history(
    points: Sequence[Sequence[float] | None], ref: Sequence[float]
) -> list[float]:
    """Hypervolume after each trial (None: a trial with no feasible values)."""
    seen: list[Sequence[float]] = []
    out = []
    for p in points:
        if p is not None:
            seen.append(p)
        out.append(hypervolume(seen, ref) if seen else 0.0)
    return out


def is_finite(values: Sequence[float]) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def trial_record(t: Any, objectives: Sequence[str]) -> TrialRecord:
    """The record of an Optuna ``FrozenTrial`` (read through its public attributes only)."""
    ua = t.user_attrs
    state = t.state.name
    outcome = ua.get("outcome") or {
        "COMPLETE": "complete",
        "PRUNED": "stopped",
        "FAIL": "failed",
        "RUNNING": "running",
        "WAITING": "waiting",
    }.get(state, state.lower())
    values = {}
    if state == "COMPLETE" and t.values is not None:
        values = dict(zip(objectives, t.values, strict=True))
    duration = t.duration.total_seconds() if t.duration is not None else None
    model = ua.get("model") or {}
    return TrialRecord(
        number=t.number,
        state=state,
        outcome=outcome,
        reason=ua.get("reason", ""),
        label=ua.get("label") or (model_label(model) if model else "?"),
        params=dict(t.params),
        values=values,
        metrics=dict(ua.get("metrics") or {}),
        constraints=dict(t.constraints),
        fidelity=list(ua.get("fidelity") or []),
        tokens=ua.get("trained_tokens"),
        train_seconds=ua.get("train_seconds"),
        seconds=duration,
        model=model,
        duplicate_of=ua.get("duplicate_of"),
        family=model_family(model) if model else "?",
        mixers=ua.get("mixers") or (model_mixers(model) if model else "?"),
    )


def budget_label(train: dict[str, Any], per: str = "trial") -> str:
    """What the trials (or runs) of a study were given equally, from its saved ``train``
    settings: 'at equal compute (3e+13 FLOP per trial)', 'at equal tokens (200,000 tokens per
    trial)', or the step or time budget."""
    flops, tokens = train.get("budget_flops"), train.get("budget_tokens")
    steps, seconds = train.get("budget_steps"), train.get("budget_seconds")
    if flops:
        return f"at equal compute ({float(flops):.3g} FLOP per {per})"
    if tokens:
        return f"at equal tokens ({int(tokens):,} tokens per {per})"
    if steps:
        return f"at equal steps ({int(steps):,} steps per {per})"
    if seconds:
        return f"at equal training time ({float(seconds):g} s per {per})"
    return "at an unknown budget"
