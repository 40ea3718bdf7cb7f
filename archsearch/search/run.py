"""Running a search: validate everything, open (or resume) the study, run it here or in worker
processes, write the report; and joining a study as one worker.

What ``archsearch search``, ``archsearch quickstart`` and ``archsearch worker`` do, without the
command line: the CLI parses options and hands in a :class:`~archsearch.search.observer.StudyView`
factory (its live table). See docs/search.md, "Storage and workers".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch

from archsearch.errors import ConfigError
from archsearch.model.config import ModelConfig
from archsearch.outputs import check_study_folder, check_writable_dir, folder_name
from archsearch.profiling.profiles import Profile
from archsearch.quality.tasks import Task, make_task
from archsearch.quality.train import TrainConfig, check_budget_fits, training_flops_per_window
from archsearch.search.front_seeds import reseed_front
from archsearch.search.loop import Search, SearchSummary
from archsearch.search.observer import StudyView
from archsearch.search.pipeline import WEIGHTS_ATTR
from archsearch.search.report import write_report
from archsearch.search.results import common_failure, count_finished, outcome_counts
from archsearch.search.space import load_space, sample_configs
from archsearch.search.storage import (
    STORAGE_ENV,
    held,
    is_parallel_safe,
    load_study,
    open_storage,
    redact,
    storage_url,
)
from archsearch.search.study import (
    SAMPLERS,
    TARGET,
    Settings,
    make_sampler,
    open_study,
    settings_from,
    settings_of,
)
from archsearch.search.tracking import parse_tracks, with_trackers

#: a search folder's own files: re-running into a folder holding one resumes its study
OWN_FILES = ("study.db", "study.journal")

#: makes the display of a study: (study name, trials asked for, its settings) -> view
ViewFactory = Callable[[str, int, Settings], StudyView]


def _no_view(name: str, n_trials: int, settings: Settings) -> StudyView:
    return StudyView()


def _study_url(storage: str | None, out: Path, workers: int) -> str:
    """The study's storage URL (default: a SQLite file, or a journal for several workers, in
    ``out``); SQLite is refused for parallel writers."""
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    url = storage_url(storage or out / ("study.journal" if workers > 1 else "study.db"))
    if workers > 1 and not is_parallel_safe(url):
        raise ConfigError(
            "--storage",
            redact(url),
            "a journal file (journal:PATH) or a database server for --workers > 1: SQLite "
            "is not safe for parallel writers",
        )
    return url


def run_search(
    space_spec: str,
    *,
    trials: int,
    task: str | None = None,
    task_options: dict[str, Any] | None = None,
    profile: Profile | None = None,
    storage: str | None = None,
    study: str | None = None,
    sampler: str = "tpe",
    seed: int = 0,
    eta: int | None = None,
    rungs: int | None = None,
    budget_tokens: int | None = None,
    budget_flops: float | None = None,
    front_seeds: int = 0,
    timeout: float | None = None,
    workers: int = 1,
    devices: str | None = None,
    threads: int | None = None,
    out: Path | None = None,
    report: bool = True,
    command: str = "",
    view: ViewFactory = _no_view,
    force: bool = False,
    save_weights: bool = False,
    track: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Validate everything, then open (or resume) the study and run it: in this process, or in
    ``workers`` worker processes; then write the report (``OUT/report``). A summary dict.

    ``profile``: the hardware preset, checked against this machine (default: CPU); ``view``
    makes the live display; ``front_seeds``: extra seeds per front model (:mod:`.front_seeds`);
    ``save_weights``: :data:`.pipeline.WEIGHTS_ATTR`; ``track``: :mod:`.tracking`."""
    if sampler not in SAMPLERS:
        raise ConfigError("--sampler", sampler, "one of " + ", ".join(SAMPLERS))
    if front_seeds < 0:
        raise ConfigError("--front-seeds", front_seeds, "an integer >= 0")
    tracks = parse_tracks(track)
    sp = load_space(space_spec)
    models = sample_configs(sp)
    settings = settings_from(
        sp,
        task=task,
        task_options=task_options or {},
        profile=profile or Profile(),
        eta=eta,
        rungs=rungs,
        budget_tokens=budget_tokens,
        budget_flops=budget_flops,
        draws=models,
    )
    name = study or sp.name
    out = _out_folder(out, name, force=force)
    url = _study_url(storage, out, workers)
    device_list = parse_devices(devices)
    the_task = make_task(settings.task, settings.task_options, seq_len=sp.seq_len)
    models = models_for_task(models, the_task, sp.source)
    options = (budget_tokens is not None, budget_flops is not None)
    check_budget_trains(settings.train, the_task, models, options)
    with held(url):  # one process writes a SQLite study; storage failures: one line
        st = _open(
            settings, url, name, trials, (sampler, seed), out / "weights" if save_weights else None
        )
        live = with_trackers(view(name, trials, settings), tracks, name, settings)
        if workers > 1:
            launch = WorkerLaunch(url, name, trials, workers, device_list, threads, sampler, seed)
            result = run_workers(st, launch, out, live)
        else:
            here = run_here(
                st, settings, live, the_task, trials=trials, timeout=timeout, threads=threads
            )
            result = {"study": name, "storage": redact(url), **here}
        if front_seeds and not result["interrupted"]:
            _reseed(st, settings, the_task, front_seeds, result)
    result["common_failure"] = common_failure(st.get_trials(deepcopy=False))
    if report:
        out.mkdir(parents=True, exist_ok=True)
        result["report"] = write_report(st, out / "report", command=command)
    return result


def _open(
    settings: Settings,
    url: str,
    name: str,
    trials: int,
    sampling: tuple[str, int],
    weights: Path | None,
) -> optuna.Study:
    """Open (or resume) the study with its trial target; with ``weights``, complete trials keep
    their weights there (a resumed run too)."""
    store = open_storage(url, exclusive=True)
    sampler, seed = sampling
    st = open_study(settings, store, name, sampler=sampler, seed=seed, n_trials=trials)
    st.set_user_attr(TARGET, trials)
    if weights is not None:
        st.set_user_attr(WEIGHTS_ATTR, str(weights.resolve()))
    return st


def models_for_task(models: list[ModelConfig], task: Task, source: str | None) -> list[ModelConfig]:
    """The sampled models that can run the task (vocabulary, window); if none can, the task
    settings contradict the space: one line with the first model's reason, before any trial."""
    ok, first = [], None
    for m in models:
        try:
            task.check_model(m)
            ok.append(m)
        except ConfigError as e:
            first = first or e
    if not ok and first is not None:
        raise ConfigError(
            f"task ({first.field})",
            first.value,
            f"{first.allowed} for some model of the space (none of {len(models)} sampled does)",
            source=source,
        )
    return ok


def check_budget_trains(
    train: TrainConfig, task: Task, models: list[ModelConfig], options: tuple[bool, bool]
) -> None:
    """Before the first trial: the budget trains at least one window (tokens) and at least one
    optimizer step of the cheapest of the space's sampled models (FLOPs), or it is one line
    naming the option (or the space's ``train.budget_*``) and the smallest budget that works.
    ``options``: whether the token and the FLOPs budgets came from the command line."""
    tokens_field = "--budget-tokens" if options[0] else "train.budget_tokens"
    field = "--budget-flops" if options[1] else "train.budget_flops"
    try:
        check_budget_fits(train, task)
    except ConfigError as e:
        raise ConfigError(tokens_field, e.value, e.allowed) from None
    if train.budget_flops is None or not models:
        return
    step = min(training_flops_per_window(m, task) for m in models) * train.batch_size
    if train.budget_flops < step:
        raise ConfigError(
            field,
            f"{train.budget_flops:.4g}",
            f"at least one optimizer step of the cheapest of the space's sampled models "
            f"({step:.4g} FLOPs: {train.batch_size} windows of T = {task.seq_len})",
        )


def _out_folder(out: Path | None, name: str, *, force: bool) -> Path:
    """The search's output folder, checked before any work: writable, and new, empty or this
    study's own (a re-run resumes) unless ``force``."""
    out = out or Path("runs/search") / folder_name(name)
    check_writable_dir(out, "--out")
    check_study_folder(out, "--out", name, force=force, own=OWN_FILES)
    return out


def _reseed(st: optuna.Study, settings: Settings, task: Task, k: int, result: dict) -> None:
    """Train the front over ``k`` extra seeds; a Ctrl-C marks the result interrupted."""
    try:
        result["front_seed_runs"] = reseed_front(st, settings, task, k)
    except KeyboardInterrupt:
        result["interrupted"] = True


def run_here(
    st: optuna.Study,
    settings: Settings,
    live: StudyView,
    task: Task,
    *,
    trials: int,
    timeout: float | None,
    threads: int | None,
) -> dict[str, Any]:
    """Run the study in this process (after recovering the trials of dead local processes)."""
    if threads is not None:
        torch.set_num_threads(threads)
    search = Search(st, settings, observer=live, task=task)
    recovered = search.recover()
    with live:
        live.load(st)
        if recovered:
            live.note(f"trials {recovered} were left running by a dead process: queued again")
        summary = search.run(trials, timeout=timeout)
    return {
        **_summary_fields(summary),
        "timed_out": summary.stopped_by_timeout,
        "outcomes": summary.outcomes,
    }


def _summary_fields(summary: SearchSummary) -> dict[str, Any]:
    return {
        "finished": summary.finished,
        "ran": summary.ran,
        "interrupted": summary.interrupted,
    }


def parse_devices(text: str | None) -> list[str]:
    """``--devices 0,1,2,3`` -> ``["0", "1", "2", "3"]`` (empty: none given)."""
    if not text:
        return []
    out = [d.strip() for d in text.split(",") if d.strip()]
    if not out or not all(d.isdigit() for d in out):
        raise ConfigError("--devices", text, "comma-separated GPU indices, e.g. 0,1,2,3")
    return out


class WorkerLaunch:
    """The ``archsearch worker`` processes of one search on this machine."""

    def __init__(
        self,
        url: str,
        name: str,
        trials: int,
        workers: int,
        devices: list[str],
        threads: int | None,
        sampler: str,
        seed: int,
    ) -> None:
        self.url, self.name, self.trials, self.workers = url, name, trials, workers
        self.devices, self.sampler, self.seed = devices, sampler, seed
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)

    def command(self, i: int, offset: int) -> list[str]:
        """Worker ``i``'s command line (no storage URL: it may hold a password, and command
        lines are public; see :meth:`env`); its seed is offset by the trials already there."""
        cmd = [sys.executable, "-m", "archsearch", "worker"]
        cmd += ["--study", self.name, "--trials", str(self.trials)]
        cmd += ["--threads", str(self.threads), "--json", "--sampler", self.sampler]
        return [*cmd, "--seed", str(self.seed + 1000 * i + offset)]

    def env(self, i: int) -> dict[str, str]:
        """Worker ``i``'s environment: the storage URL, and its GPU if devices were given."""
        env = {**os.environ, STORAGE_ENV: self.url}
        if self.devices:
            env["CUDA_VISIBLE_DEVICES"] = self.devices[i % len(self.devices)]
        return env


def run_workers(
    st: optuna.Study, launch: WorkerLaunch, out: Path, live: StudyView
) -> dict[str, Any]:
    """Start the workers on the study, each pinned to a device (round robin) with its share of
    the CPU threads, its output in ``OUT/worker-I.log``; show the study live until they end. A
    Ctrl-C is passed on to them: each marks its running trial interrupted."""
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    offset = len(st.trials)
    for i in range(launch.workers):
        log = (out / f"worker-{i}.log").open("w")
        procs.append(
            subprocess.Popen(
                launch.command(i, offset), stdout=log, stderr=subprocess.STDOUT, env=launch.env(i)
            )
        )
    interrupted = False
    with live:
        try:
            while any(p.poll() is None for p in procs):
                live.load(st)
                with contextlib.suppress(subprocess.TimeoutExpired):  # wakes up on an exit
                    next(p for p in procs if p.poll() is None).wait(timeout=1.0)
        except KeyboardInterrupt:
            interrupted = True
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait()
        live.load(st)
    codes = [p.returncode for p in procs]
    trials = st.get_trials(deepcopy=False)
    return {
        "study": launch.name,
        "storage": redact(launch.url),
        "finished": count_finished(trials),
        "ran": None,
        "workers": launch.workers,
        "threads_per_worker": launch.threads,
        "worker_exit_codes": codes,
        "interrupted": interrupted or any(c == 130 for c in codes),
        "timed_out": False,
        "outcomes": outcome_counts(trials),
    }


def run_worker(
    storage: str,
    study: str,
    *,
    trials: int | None = None,
    threads: int | None = None,
    heartbeat: int = 30,
    sampler: str = "tpe",
    seed: int | None = None,
    view: ViewFactory = _no_view,
) -> dict[str, Any]:
    """Join an existing study and run its trials until it holds ``trials`` finished ones
    (default: the number its search asked for). A summary dict."""
    st, url = load_study(storage, study, heartbeat=heartbeat, exclusive=True)
    with held(url):
        target = trials or st.user_attrs.get(TARGET)
        if target is None:
            raise ConfigError("--trials", None, "a number of trials (the study records none)")
        if threads is not None:
            torch.set_num_threads(threads)
        settings = settings_of(st)
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "little")  # workers must not all draw the same
        st.sampler = make_sampler(sampler, seed, int(target))
        live = view(study, int(target), settings)
        search = Search(st, settings, observer=live)
        with live:
            live.load(st)
            summary = search.run(int(target))
    return {
        "study": study,
        "storage": redact(url),
        "worker": search.worker,
        **_summary_fields(summary),
        "outcomes": summary.outcomes,
    }
