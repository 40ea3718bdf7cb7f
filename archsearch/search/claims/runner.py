"""Training the claims study: every (experiment, model, seed) of one scale, resumably, on one or
more worker processes, then one ``results.csv`` and one ``curves.csv`` of every finished run.

Each experiment is an ``archsearch compare`` study (:mod:`archsearch.search.compare`) in one
SQLite file, named ``<scale>-<experiment>`` (``<scale>-quick-<experiment>`` for ``--quick``), so
the same command run again trains only what is missing, and a study is never re-opened with
another recipe. Workers are separate processes (each with its own torch threads), given one run at
a time; a run stopped half-way (Ctrl-C, a killed machine) is trained again on the next call.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError
from archsearch.profiling.env import environment, torch_threads
from archsearch.profiling.profiles import check_device, load_profile, resolve_profile_path
from archsearch.quality.tasks import get_task
from archsearch.quality.train import TrainConfig
from archsearch.search.claims.spec import Experiment, Scale, Spec
from archsearch.search.compare import (
    Comparison,
    finished_runs,
    open_compare_study,
    prepare,
    train_one,
)
from archsearch.search.storage import open_storage, storage_url

Unit = tuple[str, str, int]
"""(experiment, model, seed)"""
OnRun = Callable[[Unit, str], None]
"""called with 'start', 'skip' or 'done: ...' for a progress display"""


def study_name(scale: Scale, exp: str, quick: bool) -> str:
    return f"{scale.name}-quick-{exp}" if quick else f"{scale.name}-{exp}"


def seeds_of(scale: Scale, quick: bool) -> int:
    return scale.quick_seeds if quick else scale.seeds


def comparison(scale: Scale, exp: Experiment, quick: bool) -> Comparison:
    """The experiment as a validated :class:`Comparison` (nothing trained)."""
    prof = load_profile(scale.profile)
    check_device(prof, source=str(resolve_profile_path(scale.profile)))
    budget = exp.budget_flops * (scale.quick_budget if quick else 1.0)
    tcfg = TrainConfig(
        budget_flops=budget,
        batch_size=exp.batch_size,
        lr=exp.lr,
        evals=exp.evals,
        compile=prof.compile,
    )
    try:
        return prepare(
            [scale.model_path(m) for m in exp.models],
            seeds=seeds_of(scale, quick),
            task=exp.task,
            task_options=exp.options,
            seq_len=exp.seq_len,
            train_cfg=tcfg,
            profile=prof,
        )
    except ConfigError as e:
        raise e.located(prefix=f"scales.{scale.name}.experiments.{exp.name}") from None


def pending(spec: Spec, scale: Scale, quick: bool, db: Path) -> tuple[list[Unit], list[Unit]]:
    """(finished, to train), checking every experiment's study against its recipe first; seed
    0 of every model comes before seed 1 of any."""
    done: list[Unit] = []
    todo: list[Unit] = []
    finished = {}
    for exp in scale.experiments.values():
        comp = comparison(scale, exp, quick)
        study = open_compare_study(comp, db, study_name(scale, exp.name, quick))
        finished[exp.name] = finished_runs(study)
    for seed in range(seeds_of(scale, quick)):  # seed-major: a cut-short call has every model
        for exp in scale.experiments.values():
            for m in exp.models:
                (done if (m, seed) in finished[exp.name] else todo).append((exp.name, m, seed))
    return done, todo


# ---- one run, in whichever process does it ----

_CACHE: dict[tuple[str, str, bool, str], Comparison] = {}
"""a worker's comparisons, so a corpus is loaded once per process"""


def train_unit(
    scale: Scale, quick: bool, db: str, unit: Unit, threads: int | None
) -> tuple[Unit, str]:
    """Train one run unless the study already has it; (unit, 'done: ...' or 'skip')."""
    exp_name, model, seed = unit
    key = (scale.name, scale.profile, quick, exp_name)
    if key not in _CACHE:
        _CACHE[key] = comparison(scale, scale.experiments[exp_name], quick)
    comp = _CACHE[key]
    study = open_compare_study(comp, Path(db), study_name(scale, exp_name, quick))
    if (model, seed) in finished_runs(study):
        return unit, "skip"
    entry = next(m for m in comp.models if m.name == model)
    try:
        with torch_threads(threads):
            res = train_one(comp, study, entry, seed)
    except Exception as e:  # noqa: BLE001  (stored as a failed trial; the next call retries it)
        return unit, f"failed: {type(e).__name__}: {e}"
    value = res.final.get(comp.task.metric, math.nan)
    return unit, f"{res.status}: {comp.task.metric} {value:.4f} ({res.wall_seconds:.0f} s)"


def _pool_map(args: list[tuple[Any, ...]], workers: int) -> Iterator[tuple[Unit, str]]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=None) as pool:
        results = pool.imap_unordered(_star_train, args)
        for _ in args:
            while True:  # a bounded wait, so Ctrl-C (SIGINT) reaches this process mid-run
                try:
                    yield results.next(timeout=0.5)
                    break
                except mp.TimeoutError:
                    continue


def _star_train(args: tuple[Any, ...]) -> tuple[Unit, str]:
    return train_unit(*args)


def run_units(
    spec: Spec,
    scale: Scale,
    quick: bool,
    db: Path,
    todo: list[Unit],
    *,
    workers: int,
    threads: int | None,
    on_run: OnRun | None = None,
) -> int:
    """Train ``todo`` on ``workers`` processes (1: in this process); calls ``on_run`` as runs
    start and end, and returns how many runs it trained (finished, not skipped or failed)."""
    args = [(scale, quick, str(db), u, threads) for u in todo]
    trained = 0

    def report(unit: Unit, what: str) -> None:
        nonlocal trained
        trained += what.startswith(("completed", "diverged"))
        if on_run is not None:
            on_run(unit, what)

    try:
        if workers <= 1:
            for a in args:
                if on_run is not None:
                    on_run(a[3], "start")
                report(*train_unit(*a))
        else:
            for unit, what in _pool_map(args, min(workers, len(args)) or 1):
                report(unit, what)
    except KeyboardInterrupt as e:
        raise Interrupted(trained) from e
    return trained


class Interrupted(Exception):
    """Ctrl-C (or SIGINT) during the runs; ``trained`` finished before it."""

    def __init__(self, trained: int) -> None:
        super().__init__(f"interrupted after {trained} runs")
        self.trained = trained


# ---- the records ----

RESULT_COLUMNS = (
    "scale", "experiment", "task", "seq_len", "model", "seed", "status", "metric", "value",
    "budget_flops", "flops_spent", "flops_train_per_window", "params", "steps", "tokens",
    "train_seconds", "wall_seconds", "eval",
)  # fmt: skip


Rows = list[dict[str, Any]]


def collect(scale: Scale, quick: bool, db: Path) -> tuple[Rows, Rows]:
    """(results rows, curve rows) of every finished run of the scale, in spec order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = open_storage(storage_url(db))
    results, curves = [], []
    for exp in scale.experiments.values():
        try:
            study = optuna.load_study(study_name=study_name(scale, exp.name, quick), storage=st)
        except KeyError:
            continue
        rec = study.user_attrs.get("archsearch.compare", {})
        metric = get_task(exp.task, field="task").metric
        finished = finished_runs(study)
        for m in exp.models:
            for seed in range(seeds_of(scale, quick)):
                t = finished.get((m, seed))
                if t is None:
                    continue
                a = t.user_attrs
                results.append(_result_row(scale, exp, rec, metric, m, seed, a))
                for i, (flops, value) in enumerate(a.get("curve") or []):
                    curves.append(
                        {"scale": scale.name, "experiment": exp.name, "model": m, "seed": seed,
                         "point": i, "flops_spent": flops, "metric": metric, "value": value}
                    )  # fmt: skip
    return results, curves


def _result_row(
    scale: Scale, exp: Experiment, rec: dict[str, Any], metric: str, m: str, seed: int,
    a: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    final = a.get("final") or {}
    return {
        "scale": scale.name,
        "experiment": exp.name,
        "task": exp.task,
        "seq_len": rec.get("seq_len", exp.seq_len),
        "model": m,
        "seed": seed,
        "status": a.get("status"),
        "metric": metric,
        "value": final.get(metric),
        "budget_flops": (rec.get("train") or {}).get("budget_flops"),
        "flops_spent": a.get("flops_spent"),
        "flops_train_per_window": a.get("flops_per_window"),
        "params": a.get("params"),
        "steps": a.get("steps"),
        "tokens": a.get("tokens"),
        "train_seconds": a.get("train_seconds"),
        "wall_seconds": a.get("wall_seconds"),
        "eval": json.dumps({k: v for k, v in final.items() if k != metric}, sort_keys=True),
    }


def write_csv(rows: list[dict[str, Any]], path: Path, columns: tuple[str, ...]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows([{k: "" if r.get(k) is None else r.get(k) for k in columns} for r in rows])
    return path


CURVE_COLUMNS = ("scale", "experiment", "model", "seed", "point", "flops_spent", "metric", "value")


def corpus_info(scale: Scale, quick: bool) -> dict[str, Any]:
    """The lm experiments' corpus (name, source, sha256, sizes), from the first one."""
    for exp in scale.experiments.values():
        if exp.task == "lm":
            info = comparison(scale, exp, quick).task.describe().get("corpus")
            if info:
                return dict(info)
    return {}


def log_invocation(out: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Append this call to ``runs.json`` (wall time, workers, runs trained); all calls so far."""
    path = out / "runs.json"
    calls = json.loads(path.read_text()) if path.exists() else []
    calls.append(record)
    path.write_text(json.dumps(calls, indent=1) + "\n")
    return calls


def device_record(scale: Scale) -> dict[str, Any]:
    prof = load_profile(scale.profile)
    env = environment(prof.device)
    keep = ("device", "device_name", "cpu", "cpu_count", "torch", "python", "git_sha", "cuda")
    return {k: env.get(k) for k in keep} | {"profile": prof.name, "dtype": prof.dtype}
