"""Re-training the final front over extra seeds (``search --front-seeds K``).

A front point is one training run: one seed. After the search, each model on the feasible front
is trained again with seeds ``seed+1 .. seed+K`` of the study's recipe on the full budget (no
halving), so the report can give each point's mean and 95% interval on its quality objectives
and say whether it is distinguishable from its neighbours along the front (docs/search.md,
"Reports"). The runs are stored in the study's user attribute ``archsearch.front_seeds`` (trial
number -> seed -> final held-out metrics), so a re-run trains only the seeds still missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optuna

from archsearch.model.config import model_config_from_dict
from archsearch.quality.tasks import Task
from archsearch.quality.train import train
from archsearch.search.results import TrialRecord, feasible_front, trial_record
from archsearch.search.study import Settings, jsonable

ATTR = "archsearch.front_seeds"
"""the study user attribute holding the extra-seed runs of the front"""

SeedHook = Callable[[int, int, str], None]
"""(trial number, seed, 'start' | 'done: ...' | 'diverged: ...') for a progress display"""


def front_trials(study: optuna.Study, settings: Settings) -> list[optuna.trial.FrozenTrial]:
    """The trials of the feasible front (complete, non-duplicate, non-dominated)."""
    trials = study.get_trials(deepcopy=False)
    records = [trial_record(t, settings.objectives) for t in trials]
    front = feasible_front(records, settings.objectives, settings.directions)
    numbers = {r.number for r in front}
    return [t for t in trials if t.number in numbers]


def seed_runs(study: optuna.Study) -> dict[str, dict[str, dict[str, float]]]:
    """The stored extra-seed runs: trial number -> seed -> final metrics (as strings' keys)."""
    return dict(study.user_attrs.get(ATTR) or {})


def reseed_front(
    study: optuna.Study,
    settings: Settings,
    task: Task,
    k: int,
    *,
    on_run: SeedHook | None = None,
) -> int:
    """Train every front model over ``k`` extra seeds it does not have yet; the number of runs
    made. A Ctrl-C propagates after the finished runs are stored."""
    if k < 1:
        return 0
    runs = seed_runs(study)
    made = 0
    base = settings.train.seed
    tcfg = dataclasses.replace(settings.train, eval_at=())
    for t in front_trials(study, settings):
        model = model_config_from_dict(t.user_attrs["model"])
        have = runs.setdefault(str(t.number), {})
        for seed in range(base + 1, base + 1 + k):
            if str(seed) in have:
                continue
            if on_run is not None:
                on_run(t.number, seed, "start")
            res = train(model, task, dataclasses.replace(tcfg, seed=seed), settings.profile)
            if res.status == "interrupted":
                raise KeyboardInterrupt
            if res.status == "completed":
                have[str(seed)] = jsonable(res.final)
                study.set_user_attr(ATTR, runs)
            made += 1
            if on_run is not None:
                on_run(t.number, seed, f"{res.status}: {res.reason}")
    return made


def seed_rows(
    runs: dict[str, dict[str, dict[str, float]]],
    records: list[TrialRecord],
    objectives: list[str],
    own_seed: int,
) -> list[dict[str, Any]]:
    """One row per (trial, seed) of the trials with extra-seed runs, with their objectives that
    training reports: the search's own run (seed ``own_seed``), then the extra seeds."""
    rows = []
    for r in records:
        extra = runs.get(str(r.number)) or {}
        if not extra:
            continue
        reported = {m for final in extra.values() for m in final}
        names = [m for m in objectives if m in reported]
        rows.append({"number": r.number, "seed": own_seed, **_pick(r.metrics, names)})
        for seed, final in sorted(extra.items(), key=lambda kv: int(kv[0])):
            rows.append({"number": r.number, "seed": int(seed), **_pick(final, names)})
    return rows


def _pick(metrics: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {m: metrics.get(m) for m in names}
