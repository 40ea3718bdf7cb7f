"""One trial, as plain functions: sample → build and validate → profile → train → record.

1. :func:`sample_model`: the model of the trial (:func:`~archsearch.search.space.sample`,
   define-by-run); a combination the space rejects is recorded *invalid* (PRUNED, constraint
   ``valid`` = 1, so TPE learns to avoid it) without building anything;
2. :func:`validate`: the config is built and checked once, at the space's window length: the
   model, its mixers (through the analytic cost, which the profile step reuses), the task, and
   that every named metric can be measured on it (``decode_ms`` needs a model that decodes token
   by token; one that cannot is *invalid* too, with the reason), and that one optimizer step of
   it fits a FLOPs budget;
3. :func:`profile`: the profiled metrics the space names (plus the free analytic ones) by
   :func:`~archsearch.profiling.measure.measure_metrics`; the constraints on them go through
   ``trial.set_constraint`` as a relative excess, and a broken one makes the trial *infeasible*
   (PRUNED) without training;
4. :func:`train_trial`: training with the space's recipe; at each rung of successive halving
   (:mod:`archsearch.search.halving`; fractions of the token or FLOPs budget) the trial is
   ranked against the others that reached the rung and stopped (PRUNED) or promoted;
5. :func:`record_training`: the outcome, with the objectives (and the constraints on quality
   metrics) of a complete trial.

A trial whose parameters a finished trial already had reuses that result (:func:`reuse`).
The loop around these steps (asking, telling, Ctrl-C) is :mod:`archsearch.search.loop`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from archsearch import fmt
from archsearch.errors import ConfigError
from archsearch.mixers import mixer_label
from archsearch.model.config import ModelConfig, model_config_from_dict
from archsearch.model.costs import ModelCost, model_cost
from archsearch.model.weights import save_weights
from archsearch.profiling.measure import check_measurable, measure_metrics
from archsearch.quality.tasks import Task
from archsearch.quality.train import (
    CurvePoint,
    StopTraining,
    TrainResult,
    check_budget_fits,
    train,
)
from archsearch.search.halving import judge_rung
from archsearch.search.objective import (
    is_profiled,
    min_vector,
    quality_objectives,
)
from archsearch.search.observer import Observer
from archsearch.search.results import FINISHED, model_label, model_mixers
from archsearch.search.space import SearchSpace, sample
from archsearch.search.study import Settings, jsonable


@dataclass
class Outcome:
    """How a trial ended (see :mod:`archsearch.search.results` for the outcomes)."""

    outcome: str
    reason: str
    values: list[float] = field(default_factory=list)


@dataclass
class TrialContext:
    """What every step of a trial needs from the search running it."""

    study: optuna.Study
    settings: Settings
    task: Task
    observer: Observer
    critical: Callable[[], AbstractContextManager[None]]
    """a storage write that a Ctrl-C must not cut in half"""
    names: list[str]
    """every metric the space's objectives and constraints name"""


@dataclass
class Candidate:
    """A sampled model that passed validation, with its analytic cost at the space's T."""

    data: dict[str, Any]
    cfg: ModelConfig
    cost: ModelCost


def run_pipeline(ctx: TrialContext, trial: optuna.Trial) -> Outcome:
    """Every step of one trial; exceptions other than :class:`ConfigError` propagate."""
    s = ctx.settings
    try:
        data = sample_model(trial, s.space)
    except ConfigError as e:
        trial.set_constraint("valid", 1.0)
        return reuse(ctx.study, trial) or Outcome("invalid", str(e))
    reused = reuse(ctx.study, trial)
    if reused is not None:
        return reused
    try:
        trial.set_user_attr("model", jsonable(data))
        trial.set_user_attr("label", model_label(data, mixer_label))
        trial.set_user_attr("mixers", model_mixers(data, mixer_label))
        cand = validate(data, s.space.seq_len, ctx.task, ctx.names)
        check_budget_fits(s.train, ctx.task, cand.cfg)
    except ConfigError as e:
        trial.set_constraint("valid", 1.0)
        return Outcome("invalid", str(e))
    ctx.observer.trial_started(trial.number, model_label(data, mixer_label), dict(trial.params))

    metrics = profile(ctx, trial, cand)
    broken = profiled_constraints(trial, s.space, metrics)
    if broken:
        return Outcome("infeasible", "; ".join(broken) + " (not trained)")
    quality_c = [c for c in s.space.constraints if not is_profiled(c.metric)]
    if not quality_objectives(s.space) and not quality_c:
        return Outcome("complete", "profiled (no quality objective)", objective_values(s, metrics))
    res = train_trial(ctx, trial, cand.cfg, metrics)
    return record_training(ctx, trial, res, metrics)


def sample_model(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """The trial's model as YAML-ready data, named after the trial."""
    data = sample(trial, space)
    data.setdefault("name", f"{space.name}-trial{trial.number}")
    return data


def validate(data: dict[str, Any], seq_len: int, task: Task, names: list[str]) -> Candidate:
    """Build the config of ``data`` and check it once: at ``seq_len``, for the task, for its
    mixers (their own constraints, e.g. segment | T, through the analytic cost) and for the
    metrics ``names`` asks of it. A :class:`ConfigError` says what is wrong."""
    cfg = model_config_from_dict(data)
    cfg.check_seq_len(seq_len)
    task.check_model(cfg)
    cost = model_cost(cfg, seq_len)
    check_measurable(cfg, names)
    return Candidate(data, cfg, cost)


def profile(ctx: TrialContext, trial: optuna.Trial, cand: Candidate) -> dict[str, float]:
    """The profiled metrics of the candidate, recorded on the trial."""
    s = ctx.settings
    t0 = time.perf_counter()
    metrics = measure_metrics(cand.cfg, s.space.seq_len, s.profile, ctx.names, cost=cand.cost)
    trial.set_user_attr("profile_seconds", round(time.perf_counter() - t0, 3))
    trial.set_user_attr("metrics", metrics)
    return metrics


def profiled_constraints(
    trial: optuna.Trial, space: SearchSpace, metrics: dict[str, float]
) -> list[str]:
    """Set the constraints on profiled metrics; the broken ones, in words."""
    broken = []
    for c in space.constraints:
        if c.metric in metrics:
            trial.set_constraint(c.metric, c.value(metrics[c.metric]))
            why = c.broken(metrics[c.metric])
            if why is not None:
                broken.append(why)
    return broken


def objective_values(settings: Settings, metrics: dict[str, float]) -> list[float]:
    return [float(metrics[m]) for m in settings.objectives]


def record_training(
    ctx: TrialContext, trial: optuna.Trial, res: TrainResult, metrics: dict[str, float]
) -> Outcome:
    """Record what training gave (tokens, time, curve, final metrics); the trial's outcome."""
    s, task = ctx.settings, ctx.task
    trial.set_user_attr("trained_tokens", res.tokens_seen)
    trial.set_user_attr("trained_flops", res.flops_spent)
    trial.set_user_attr("train_seconds", round(res.train_seconds, 3))
    trial.set_user_attr("train_wall_seconds", round(res.wall_seconds, 3))  # + evaluation, setup
    trial.set_user_attr("curve", [[p.tokens, p.metrics.get(task.metric)] for p in res.curve])
    final = {k: v for k, v in res.final.items() if k in task.metrics}
    metrics = {**metrics, **final}
    trial.set_user_attr("metrics", metrics)
    if res.status in ("interrupted", "diverged", "stopped"):
        return Outcome(res.status, res.reason)
    for c in s.space.constraints:
        if not is_profiled(c.metric):
            trial.set_constraint(c.metric, c.value(metrics[c.metric]))
    values = objective_values(s, metrics)
    if not all(math.isfinite(v) for v in values):
        return Outcome("diverged", f"non-finite objective values {values}")
    return Outcome("complete", res.reason, values)


def train_trial(
    ctx: TrialContext, trial: optuna.Trial, cfg: ModelConfig, metrics: dict[str, float]
) -> TrainResult:
    """Train with the space's recipe, judged at each rung of successive halving."""
    s = ctx.settings
    check_budget_fits(s.train, ctx.task, cfg)
    judge = RungJudge(ctx, trial, metrics)

    def on_step(step: int, fraction: float, loss: float, tps: float) -> None:
        ctx.observer.trial_step(fraction, loss)

    # Optuna keeps intermediate values of single-objective studies only (optuna-dashboard draws
    # them); every study's curve is also saved whole at the end (``curve``)
    single = s.objectives == [ctx.task.metric]

    def on_eval(p: CurvePoint) -> None:
        metric = ctx.task.metric
        value = p.metrics.get(metric)
        ctx.observer.trial_eval(p.progress, metric, value)
        if single and p.tokens > 0 and value is not None and math.isfinite(value):
            with ctx.critical():
                trial.report(float(value), step=p.tokens)
        judge(p)

    folder = ctx.study.user_attrs.get(WEIGHTS_ATTR)

    def on_done(model: torch.nn.Module, res: TrainResult) -> None:
        if folder and res.status == "completed":
            save_weights(model, cfg, trial_weights(folder, trial.number))

    return train(
        cfg, ctx.task, s.train, s.profile, on_step=on_step, on_eval=on_eval, on_done=on_done
    )


#: the study attribute naming the folder where complete trials keep their trained weights
#: (set by ``search --save-weights`` to ``OUT/weights``; every worker of the study saves there,
#: a resumed run too; the report copies the front's next to their model files)
WEIGHTS_ATTR = "weights_dir"


def trial_weights(folder: str | Path, number: int) -> Path:
    """Where trial ``number`` keeps its trained weights under the study's weights folder."""
    return Path(folder) / f"trial-{number:04d}.safetensors"


class RungJudge:
    """The ``on_eval`` of a training run: at each rung the trial is ranked against the others
    that reached it (MO-ASHA on the minimisation vector of its objectives, quality taken at the
    rung) and stopped (:class:`StopTraining`) or promoted; recorded as ``rungs``/``fidelity``."""

    def __init__(self, ctx: TrialContext, trial: optuna.Trial, metrics: dict[str, float]) -> None:
        s = ctx.settings
        self.ctx, self.trial, self.metrics = ctx, trial, metrics
        self.fractions = s.halving.fractions()
        self.quality = quality_objectives(s.space)
        self.fidelity: list[dict[str, Any]] = []
        self.rung_points: dict[str, list[float]] = {}

    def __call__(self, p: CurvePoint) -> None:
        fractions, fidelity = self.fractions, self.fidelity
        progress = p.progress
        while len(fidelity) < len(fractions) and progress >= fractions[len(fidelity)] - 1e-9:
            r = len(fidelity)
            if not self.quality:
                break
            vec = min_vector(self.ctx.settings.space, {**self.metrics, **p.metrics})
            with self.ctx.critical():
                self.rung_points[str(r)] = vec
                self.trial.set_user_attr("rungs", dict(self.rung_points))
            if r == len(fractions) - 1:
                self._record({"rung": r, "tokens": p.tokens, "promoted": None}, p)
                break
            self._judge(r, p, vec)

    def _record(self, entry: dict[str, Any], p: CurvePoint) -> None:
        entry = {**entry, "flops": p.flops, "value": p.metrics[self.ctx.task.metric]}
        self.fidelity.append(entry)
        with self.ctx.critical():
            self.trial.set_user_attr("fidelity", list(self.fidelity))

    def _judge(self, r: int, p: CurvePoint, vec: list[float]) -> None:
        ctx, metric = self.ctx, self.ctx.task.metric
        at = spent(p, ctx.settings.train.budget_flops)
        others = rung_vectors(ctx.study, self.trial.number, r)
        d = judge_rung(ctx.settings.halving, r, p.tokens, vec, others)
        self._record(d.to_dict(), p)
        verdict = "promoted" if d.promoted else "stopped"
        ctx.observer.trial_note(
            f"rung {r} ({at}): {metric} {p.metrics[metric]:.4f}, rank "
            f"{d.rank + 1} of {d.competitors} (top {d.promoted_count} and the non-dominated go "
            f"on): {verdict}"
        )
        if not d.promoted:
            raise StopTraining(
                f"stopped at rung {r} ({at}): rank {d.rank + 1} of "
                f"{d.competitors} trials at that rung and dominated; top "
                f"{d.promoted_count} and the non-dominated go on"
            )


def spent(p: CurvePoint, budget_flops: float | None) -> str:
    """'12,288 tokens' or, in a FLOPs-budget run, '1.2 TFLOP, 12,288 tokens'."""
    if budget_flops is not None:
        return f"{fmt.si(p.flops, 'FLOP')}, {p.tokens:,} tokens"
    return f"{p.tokens:,} tokens"


def rung_vectors(study: optuna.Study, number: int, rung: int) -> list[list[float]]:
    """The minimisation vectors the other trials recorded at ``rung`` (running or finished,
    duplicates left out)."""
    return [
        t.user_attrs["rungs"][str(rung)]
        for t in study.get_trials(deepcopy=False)
        if t.number != number
        and t.state.name in ("RUNNING", "COMPLETE", "PRUNED")
        and t.user_attrs.get("duplicate_of") is None
        and str(rung) in (t.user_attrs.get("rungs") or {})
    ]


#: what a duplicate copies from the trial whose result it reuses
_REUSED = (
    "model",
    "label",
    "mixers",
    "metrics",
    "fidelity",
    "curve",
    "trained_tokens",
    "trained_flops",
)


def reuse(study: optuna.Study, trial: optuna.Trial) -> Outcome | None:
    """A trial with the same parameters already finished: training is deterministic on one
    machine, so its result is copied instead of recomputed (``duplicate_of``)."""
    reusable = FINISHED - {"failed"}
    for t in study.get_trials(deepcopy=False):
        if (
            t.number == trial.number
            or t.params != trial.params
            or t.user_attrs.get("outcome") not in reusable
        ):
            continue
        for key in _REUSED:
            if key in t.user_attrs:
                trial.set_user_attr(key, t.user_attrs[key])
        trial.set_user_attr("duplicate_of", t.number)
        for key, v in t.constraints.items():
            if key not in trial.constraints:
                trial.set_constraint(key, v)
        reason = (
            f"same parameters as trial {t.number}, whose result is reused: "
            f"{t.user_attrs.get('reason', '')}"
        )
        return Outcome(t.user_attrs["outcome"], reason, list(t.values or []))
    return None


def failure_reason(e: BaseException) -> str:
    """One line for a trial that failed with ``e`` (out of memory said as such)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if "out of memory" in text.lower() or type(e).__name__ == "OutOfMemoryError":
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return f"out of memory: {text[:300]}"
    return f"{type(e).__name__}: {text[:300]}"
