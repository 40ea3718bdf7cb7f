"""The multi-objective search: one Optuna study per (space, task, profile), one trial at a time.

A study is stored in an Optuna storage (default: a SQLite file under the output folder). Its
user attribute ``archsearch`` records what makes its trials comparable: the space (as loaded),
the task and its options, the profile, the training recipe and the halving schedule. Opening an
existing study with anything different is a one-line error *before* anything is written, so a
failed validation never modifies a study. Running the same command again resumes it: ``--trials``
is the number of finished trials the study should hold.

One trial (:meth:`Search.run_trial`):

1. sample the model (:func:`~archsearch.search.space.sample`, define-by-run); a combination the
   model or the task rejects is recorded *invalid* (PRUNED, constraint ``valid`` = 1, so TPE
   learns to avoid it) without building anything;
2. profile it (:mod:`~archsearch.search.objective`); the constraints on profiled metrics go
   through ``trial.set_constraint`` as a relative excess, and a broken one makes the trial
   *infeasible* (PRUNED) without training;
3. train it with the space's recipe; at each rung of successive halving the trial is ranked
   against the others that reached the rung (MO-ASHA) and stopped (PRUNED) or promoted;
4. tell COMPLETE with the objectives (and the constraints on quality metrics).

A NaN loss, an out-of-memory error or any other exception while profiling or training makes the
trial FAIL with its reason; the study goes on. Ctrl-C marks the running trial *interrupted*
(FAIL), queues its parameters again (``enqueue_trial``) so a resumed run retries it, and stops;
every finished trial is already in the storage. A trial left RUNNING by a process of this machine
that no longer exists (killed, power loss) is marked the same way when the study is next opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.errors import ConfigError
from archsearch.metrics import profiled_names
from archsearch.search.objective import (
    Halving,
    constraint_value,
    judge_rung,
    needed_profile_metrics,
    profile_metrics,
)
from archsearch.search.results import (
    FINISHED,
    TrialRecord,
    count_finished,
    model_label,
    outcome_counts,
    trial_record,
)
from archsearch.search.space import SearchSpace, sample

if TYPE_CHECKING:
    import optuna

    from archsearch.profiling.profiles import Profile
    from archsearch.quality.tasks import Task
    from archsearch.quality.train import CurvePoint, TrainConfig

SAMPLERS = ("tpe", "nsga2", "gp", "random")
PROFILE_METRICS = profiled_names()
ATTR = "archsearch"
"""the study user attribute holding the settings"""
TARGET = "archsearch.target_trials"
"""the study user attribute holding the number of finished trials its search asked for"""


@dataclass
class Settings:
    """Everything that makes a study's trials comparable (stored with the study)."""

    space: SearchSpace
    task: str
    task_options: dict[str, Any]
    profile: Profile
    train: TrainConfig
    halving: Halving = field(default_factory=Halving)

    @property
    def objectives(self) -> list[str]:
        return [o.metric for o in self.space.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.space.objectives]

    def record(self) -> dict[str, Any]:
        from archsearch import __version__

        train = {k: v for k, v in dataclasses.asdict(self.train).items() if k != "eval_at"}
        return {
            "space": _jsonable(self.space.raw),
            "space_name": self.space.name,
            "space_source": self.space.source,
            "task": {"name": self.task, "options": _jsonable(self.task_options)},
            "profile": _jsonable(self.profile.to_dict()),
            "train": _jsonable(train),
            "halving": {"eta": self.halving.eta, "rungs": self.halving.rungs},
            "objectives": [dataclasses.asdict(o) for o in self.space.objectives],
            "constraints": [dataclasses.asdict(c) for c in self.space.constraints],
            "archsearch_version": __version__,
        }


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


#: what a clash check compares (the version and the space's file path may differ)
_IDENTITY = ("space", "task", "profile", "train", "halving")


def settings_from(
    space: SearchSpace,
    *,
    task: str | None = None,
    task_options: dict[str, Any] | None = None,
    profile: Profile,
    eta: int | None = None,
    rungs: int | None = None,
    budget_tokens: int | None = None,
) -> Settings:
    """Resolve the task, training recipe and halving of a search (all validated here)."""
    from archsearch.dataconf import from_dict
    from archsearch.quality.tasks import TASKS
    from archsearch.quality.train import TrainConfig

    name = task or space.task.get("name") or "lm"
    if name not in TASKS:
        raise ConfigError("--task", name, "one of " + ", ".join(TASKS), source=space.source)
    options = dict(space.task.get("options") or {}) if name == space.task.get("name", name) else {}
    options.update(task_options or {})
    if name == "lm" and options.get("eval_stride") is None:
        # one stride for every model of the study (the decoder default): comparable numbers
        options["eval_stride"] = max(1, space.seq_len // 2)
    tcls = TASKS[name]
    for what, items in (("objectives", space.objectives), ("constraints", space.constraints)):
        for item in items:
            if item.metric not in PROFILE_METRICS and item.metric not in tcls.metrics:
                raise ConfigError(
                    f"{what}.metric",
                    item.metric,
                    f"a metric of the {name} task ({', '.join(tcls.metrics)}) or a profiled one",
                    source=space.source,
                )
    train_data = dict(space.train)
    halving_data = train_data.pop("halving", None) or {}
    if not isinstance(halving_data, dict):
        raise ConfigError("train.halving", halving_data, "{eta: N, rungs: R}", source=space.source)
    if budget_tokens is not None:
        train_data.update(budget_tokens=budget_tokens, budget_steps=None, budget_seconds=None)
    train_data.setdefault("budget_tokens", 200_000)
    train_data.setdefault("compile", profile.compile)
    try:
        tcfg = from_dict(TrainConfig, train_data)
        halving = Halving(
            eta=int(eta if eta is not None else halving_data.get("eta", 3)),
            rungs=int(rungs if rungs is not None else halving_data.get("rungs", 3)),
        )
    except ConfigError as e:
        raise e.located(prefix="train", source=space.source) from None
    tcfg = dataclasses.replace(tcfg, eval_at=tuple(halving.fractions()[:-1]))
    return Settings(space, name, options, profile, tcfg, halving)


# ---------------------------------------------------------------------------------------------
# storage and study


def storage_url(spec: str | Path) -> str:
    """A storage URL as given (``sqlite:///``, ``postgresql://``, ``journal:PATH``), or a path:
    ``*.journal`` is an Optuna journal file, anything else a SQLite file."""
    s = str(spec)
    if "://" in s or s.startswith("journal:"):
        return s
    path = Path(s).expanduser().resolve()
    if path.suffix == ".journal":
        return f"journal:{path}"
    return f"sqlite:///{path}"


def is_parallel_safe(url: str) -> bool:
    """Whether several processes may write the storage at once (SQLite: no)."""
    return not url.startswith("sqlite:")


def open_storage(url: str, *, create: bool = True, heartbeat: int | None = None) -> Any:
    """An Optuna storage: RDB (SQLite, PostgreSQL, ...) or a journal file (``journal:PATH``).

    ``heartbeat`` (seconds, RDB only): each running trial records a heartbeat; a trial whose
    heartbeat is older than twice that is failed by the next worker that looks and re-queued
    (``RetryFailedTrialCallback``). A one-line error if the storage cannot be opened.
    """
    import optuna

    path = None
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
    elif url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
    if path is not None:
        if not create and not path.exists():
            raise ConfigError("storage", url, "an existing storage file (no study there)")
        if not path.parent.is_dir():
            raise ConfigError("storage", url, f"a file in an existing folder ({path.parent})")
    try:
        if url.startswith("journal:"):
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            return JournalStorage(JournalFileBackend(str(path)))
        if heartbeat is not None and not url.startswith("sqlite:"):
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=3),
            )
        return optuna.storages.RDBStorage(url)
    except Exception as e:  # sqlalchemy/driver errors: bad scheme, missing driver, no server
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(
            "storage",
            url,
            "a storage Optuna can open (sqlite:///PATH, postgresql://..., journal:PATH): " + msg,
        ) from None


def study_names(storage: Any) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def check_same(stored: dict[str, Any], new: dict[str, Any], name: str) -> None:
    """A study with this name exists: it must have been made with the same settings."""
    diffs = [k for k in _IDENTITY if stored.get(k) != new.get(k)]
    if diffs:
        what = ", ".join(_first_diff(stored.get(k), new.get(k), k) for k in diffs)
        raise ConfigError(
            "--study",
            name,
            f"a new study name, or the settings of the existing study '{name}' (from "
            f"{stored.get('space_source', '?')}); they differ in {what}",
        )


def _first_diff(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_diff(a.get(k), b.get(k), f"{path}.{k}")
    return f"{path} ({a!r} there, {b!r} now)"


def make_sampler(name: str, seed: int | None, n_trials: int) -> Any:
    """The sampler, seeded; start-up (random) trials scale with the study's size."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    startup = min(10, max(4, n_trials // 4))
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(4, startup)))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError("--sampler", name, "one of " + ", ".join(SAMPLERS))


def open_study(
    settings: Settings,
    storage: Any,
    name: str,
    *,
    sampler: str = "tpe",
    seed: int | None = 0,
    n_trials: int = 20,
) -> optuna.Study:
    """Create the study, or load it after checking it has the same settings; the sampler's seed
    is offset by the trials already there, so a resumed run does not replay its first draws."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    record = settings.record()
    exists = name in study_names(storage)
    if exists:
        loaded = optuna.load_study(study_name=name, storage=storage)
        stored = loaded.user_attrs.get(ATTR)
        if stored is None:
            raise ConfigError("--study", name, "a study made by archsearch (this one was not)")
        check_same(stored, record, name)
        if [d.name.lower() for d in loaded.directions] != settings.directions:
            raise ConfigError("--study", name, "a study with the same objective directions")
        offset = len(loaded.trials)
    else:
        offset = 0
    smp = make_sampler(sampler, None if seed is None else seed + offset, n_trials)
    if exists:
        return optuna.load_study(study_name=name, storage=storage, sampler=smp)
    study = optuna.create_study(
        storage=storage, study_name=name, directions=settings.directions, sampler=smp
    )
    study.set_user_attr(ATTR, record)
    return study


def load_settings(study: optuna.Study) -> dict[str, Any]:
    rec = study.user_attrs.get(ATTR)
    if rec is None:
        raise ConfigError("study", study.study_name, "a study made by archsearch search")
    return rec


# ---------------------------------------------------------------------------------------------
# running


def recover_trials(study: optuna.Study, *, any_host: bool = False) -> list[int]:
    """Mark trials left RUNNING by a dead worker as interrupted (FAIL) and queue their
    parameters again; returns their numbers.

    A worker of this machine is dead when its process is gone. Workers of other machines cannot
    be checked from here: ``any_host`` treats every RUNNING trial as dead (use it only when no
    worker is running). Heartbeat storages (PostgreSQL) do this by themselves; journal files
    have no heartbeat, hence ``archsearch study recover``."""
    import optuna

    host = socket.gethostname()
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        w_host, _, pid = worker.partition(":")
        if not any_host and (w_host != host or not pid.isdigit() or _alive(int(pid))):
            continue
        storage = study._storage
        storage.set_trial_user_attr(t._trial_id, "outcome", "interrupted")
        storage.set_trial_user_attr(
            t._trial_id, "reason", f"its worker ({worker or 'unknown'}) ended mid-trial"
        )
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile by its (living) worker
            continue
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        out.append(t.number)
    return out


def settings_of(study: optuna.Study) -> Settings:
    """The settings a study was made with, rebuilt from its record (for workers that join)."""
    from archsearch.dataconf import from_dict
    from archsearch.profiling.profiles import Profile
    from archsearch.search.space import space_from_data

    rec = load_settings(study)
    space = space_from_data(rec["space"], source=rec.get("space_source") or "<study>")
    try:
        profile = from_dict(Profile, dict(rec["profile"]))
    except ConfigError as e:
        raise e.located(prefix="profile", source=f"study {study.study_name}") from None
    settings = settings_from(
        space,
        task=rec["task"]["name"],
        task_options=rec["task"]["options"],
        profile=profile,
        eta=rec["halving"]["eta"],
        rungs=rec["halving"]["rungs"],
        budget_tokens=rec["train"].get("budget_tokens"),
    )
    check_same(rec, settings.record(), study.study_name)
    return settings


class Observer:
    """What the CLI shows while a search runs; every method is optional."""

    def trial_started(self, number: int, label: str, params: dict[str, Any]) -> None: ...

    def trial_step(self, fraction: float, loss: float) -> None: ...

    def trial_note(self, text: str) -> None: ...

    def trial_finished(self, record: TrialRecord) -> None: ...


@dataclass
class SearchSummary:
    study: str
    finished: int
    ran: int
    interrupted: bool
    stopped_by_timeout: bool
    outcomes: dict[str, int]


class Search:
    """Runs the trials of one study, one at a time, in this process."""

    def __init__(
        self,
        study: optuna.Study,
        settings: Settings,
        *,
        observer: Observer | None = None,
        task: Task | None = None,
    ) -> None:
        from archsearch.quality.tasks import make_task

        self.study = study
        self.settings = settings
        self.observer = observer or Observer()
        self.task = task or make_task(
            settings.task, settings.task_options, seq_len=settings.space.seq_len
        )
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._interrupted = False
        self._deferred = False
        """a Ctrl-C that arrived during a storage write"""
        self._in_critical = 0
        self._wanted = needed_profile_metrics(settings.space)

    # -- bookkeeping --

    def finished(self) -> int:
        return count_finished(self.study.get_trials(deepcopy=False))

    def recover(self) -> list[int]:
        """Recover the trials of dead processes of this machine (see :func:`recover_trials`)."""
        return recover_trials(self.study)

    # -- the loop --

    def run(
        self, n_trials: int, *, timeout: float | None = None, poll: float = 1.0
    ) -> SearchSummary:
        """Run trials until the study holds ``n_trials`` finished ones (or Ctrl-C, or timeout).

        Several workers may run this on one study at once: a worker starts a trial only while
        finished + running < ``n_trials`` or a trial is queued (a re-run of an interrupted or
        dead one); otherwise it waits for the others, failing stale trials (heartbeat storages)
        and recovering dead processes of this machine as it waits, and stops when the study is
        done. A surplus trial from a race between workers is recorded as such, not run."""
        t0 = time.monotonic()
        ran = 0
        timed_out = False
        waiting_note = False
        with _sigint_as_flag(self):
            try:
                while not self._interrupted:
                    self.housekeeping()
                    trials = self.study.get_trials(deepcopy=False)
                    finished = count_finished(trials)
                    if finished >= n_trials:
                        break
                    states = [t.state.name for t in trials]
                    if "WAITING" not in states and finished + states.count("RUNNING") >= n_trials:
                        if not waiting_note:
                            self.observer.trial_note("waiting for the other workers' trials")
                            waiting_note = True
                        time.sleep(poll)
                        continue
                    if timeout is not None and time.monotonic() - t0 > timeout:
                        timed_out = True
                        break
                    self.run_trial(n_trials)
                    ran += 1
            except KeyboardInterrupt:  # between trials: nothing is running
                self._interrupted = True
        outcomes = outcome_counts(self.study.get_trials(deepcopy=False))
        return SearchSummary(
            self.study.study_name, self.finished(), ran, self._interrupted, timed_out, outcomes
        )

    def housekeeping(self) -> None:
        """Fail trials whose heartbeat stopped (database storages with a heartbeat; they are
        re-queued), or else recover the trials of dead processes of this machine."""
        import optuna

        if heartbeat_interval(self.study._storage):
            optuna.storages.fail_stale_trials(self.study)  # re-queued by RetryFailedTrialCallback
        else:
            self.recover()

    def run_trial(self, n_trials: int | None = None) -> TrialRecord:
        import optuna

        with _critical(self, raise_on_exit=False):
            trial = self.study.ask()
            for key in ("fidelity", "rungs", "metrics", "curve", "trained_tokens"):
                if key in trial.user_attrs:  # inherited by a re-queued copy of a dead trial
                    trial.set_user_attr(key, [] if key == "fidelity" else None)
            trial.set_user_attr("worker", self.worker)
            sys_attrs = self.study._storage.get_trial_system_attrs(trial._trial_id)
            failed = sys_attrs.get("failed_trial")
            if failed is not None:
                trial.set_user_attr("retry_of", failed)
        t0 = time.monotonic()
        heartbeat = _Heartbeat(self.study._storage, trial._trial_id)
        try:
            if self._deferred:
                raise KeyboardInterrupt
            queued = failed is not None or "fixed_params" in sys_attrs
            if n_trials is not None and not queued and self._surplus(trial, n_trials):
                outcome = _Outcome("surplus", "another worker started the last trial first")
            else:
                outcome = self._trial(trial)
        except KeyboardInterrupt:
            outcome = _Outcome("interrupted", "interrupted (Ctrl-C) before training finished")
        except Exception as e:  # failures are data: record, go on
            outcome = _Outcome("failed", _failure_reason(e))
        finally:
            heartbeat.stop()
        if outcome.outcome == "interrupted":
            self._interrupted = True
        state = {
            "complete": optuna.trial.TrialState.COMPLETE,
            "stopped": optuna.trial.TrialState.PRUNED,
            "infeasible": optuna.trial.TrialState.PRUNED,
            "invalid": optuna.trial.TrialState.PRUNED,
        }.get(outcome.outcome, optuna.trial.TrialState.FAIL)
        self._deferred = False
        with _critical(self, raise_on_exit=False):
            trial.set_user_attr("outcome", outcome.outcome)
            trial.set_user_attr("reason", outcome.reason)
            trial.set_user_attr("wall_seconds", round(time.monotonic() - t0, 3))
            if outcome.outcome == "complete":
                self.study.tell(trial, outcome.values)
            else:
                self.study.tell(trial, state=state)
            if outcome.outcome == "interrupted" and trial.params:
                self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        if self._deferred:
            self._interrupted = True
        record = trial_record(
            self.study.get_trials(deepcopy=False)[trial.number], self.settings.objectives
        )
        self.observer.trial_finished(record)
        return record

    def _trial(self, trial: optuna.Trial) -> _Outcome:
        from archsearch.model.config import model_config_from_dict

        s = self.settings
        T = s.space.seq_len
        try:
            data = sample(trial, s.space)
        except ConfigError as e:
            trial.set_constraint("valid", 1.0)
            return self._reuse(trial) or _Outcome("invalid", str(e))
        reused = self._reuse(trial)
        if reused is not None:
            return reused
        try:
            data.setdefault("name", f"{s.space.name}-trial{trial.number}")
            trial.set_user_attr("model", _jsonable(data))
            trial.set_user_attr("label", model_label(data))
            cfg = model_config_from_dict(data)
            cfg.check_seq_len(T)
            self.task.check_model(cfg)
            from archsearch.model.costs import model_cost

            model_cost(cfg, T)  # the mixers check their own constraints (segment | T, ...)
        except ConfigError as e:
            trial.set_constraint("valid", 1.0)
            return _Outcome("invalid", str(e))
        self.observer.trial_started(trial.number, model_label(data), dict(trial.params))

        metrics = profile_metrics(cfg, T, s.profile, self._wanted)
        trial.set_user_attr("metrics", metrics)
        broken = []
        for c in s.space.constraints:
            if c.metric in metrics:
                v = constraint_value(metrics[c.metric], c.max)
                trial.set_constraint(c.metric, v)
                if v > 0:
                    broken.append(f"{c.metric} = {metrics[c.metric]:.4g} > {c.max:.4g}")
        if broken:
            return _Outcome("infeasible", "; ".join(broken) + " (not trained)")

        quality = [m for m in s.objectives if m not in PROFILE_METRICS]
        quality_c = [c for c in s.space.constraints if c.metric not in PROFILE_METRICS]
        if not quality and not quality_c:
            return _Outcome("complete", "profiled (no quality objective)", self._values(metrics))

        res = self._train(trial, cfg, metrics)
        trial.set_user_attr("trained_tokens", res.tokens_seen)
        trial.set_user_attr("train_seconds", round(res.train_seconds, 3))
        trial.set_user_attr(
            "curve", [[p.tokens, p.metrics.get(self.task.metric)] for p in res.curve]
        )
        final = {k: v for k, v in res.final.items() if k in self.task.metrics}
        metrics = {**metrics, **final}
        trial.set_user_attr("metrics", metrics)
        if res.status == "interrupted":
            return _Outcome("interrupted", res.reason)
        if res.status == "diverged":
            return _Outcome("diverged", res.reason)
        if res.status == "stopped":
            return _Outcome("stopped", res.reason)
        for c in quality_c:
            trial.set_constraint(c.metric, constraint_value(metrics[c.metric], c.max))
        values = self._values(metrics)
        if not all(math.isfinite(v) for v in values):
            return _Outcome("diverged", f"non-finite objective values {values}")
        return _Outcome("complete", res.reason, values)

    def _surplus(self, trial: optuna.Trial, n_trials: int) -> bool:
        """Two workers raced for the last trial: the later one (by number) gives way."""
        trials = self.study.get_trials(deepcopy=False)
        finished = count_finished(trials)
        ahead = [
            t
            for t in trials
            if t.state.name == "RUNNING"
            and t.number < trial.number
            and "outcome" not in t.user_attrs
        ]
        return finished + len(ahead) >= n_trials

    def _reuse(self, trial: optuna.Trial) -> _Outcome | None:
        """A trial with the same parameters already finished: training is deterministic on one
        machine, so its result is copied instead of recomputed (``duplicate_of``)."""
        reusable = FINISHED - {"failed"}
        for t in self.study.get_trials(deepcopy=False):
            if (
                t.number == trial.number
                or t.params != trial.params
                or t.user_attrs.get("outcome") not in reusable
            ):
                continue
            for key in ("model", "label", "metrics", "fidelity", "curve", "trained_tokens"):
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
            return _Outcome(t.user_attrs["outcome"], reason, list(t.values or []))
        return None

    def _values(self, metrics: dict[str, float]) -> list[float]:
        return [float(metrics[m]) for m in self.settings.objectives]

    def _min_vector(self, metrics: dict[str, float]) -> list[float]:
        return [
            float(metrics[o.metric]) * (1 if o.direction == "minimize" else -1)
            for o in self.settings.space.objectives
        ]

    def _train(self, trial: optuna.Trial, cfg: Any, metrics: dict[str, float]) -> Any:
        from archsearch.quality.train import StopTraining, check_budget_fits, train

        s = self.settings
        tcfg = s.train
        check_budget_fits(tcfg, self.task)
        fractions = s.halving.fractions()
        total = tcfg.total_steps(tcfg.batch_size * self.task.seq_len)
        fidelity: list[dict[str, Any]] = []
        rung_points: dict[str, list[float]] = {}
        quality_objectives = [
            o.metric for o in s.space.objectives if o.metric not in PROFILE_METRICS
        ]

        def on_eval(p: CurvePoint) -> None:
            if total:
                progress = p.step / total
            else:
                progress = p.train_seconds / float(tcfg.budget_seconds or 1)
            while len(fidelity) < len(fractions) and progress >= fractions[len(fidelity)] - 1e-9:
                r = len(fidelity)
                if not quality_objectives:
                    break
                vec = self._min_vector({**metrics, **p.metrics})
                with _critical(self):
                    rung_points[str(r)] = vec
                    trial.set_user_attr("rungs", dict(rung_points))
                if r == len(fractions) - 1:
                    fidelity.append(
                        {
                            "rung": r,
                            "tokens": p.tokens,
                            "value": p.metrics[self.task.metric],
                            "promoted": None,
                        }
                    )
                    with _critical(self):
                        trial.set_user_attr("fidelity", list(fidelity))
                    break
                others = [
                    t.user_attrs["rungs"][str(r)]
                    for t in self.study.get_trials(deepcopy=False)
                    if t.number != trial.number
                    and t.state.name in ("RUNNING", "COMPLETE", "PRUNED")
                    and t.user_attrs.get("duplicate_of") is None
                    and str(r) in (t.user_attrs.get("rungs") or {})
                ]
                d = judge_rung(s.halving, r, p.tokens, vec, others)
                fidelity.append({**d.to_dict(), "value": p.metrics[self.task.metric]})
                with _critical(self):
                    trial.set_user_attr("fidelity", list(fidelity))
                verdict = "promoted" if d.promoted else "stopped"
                self.observer.trial_note(
                    f"rung {r} ({p.tokens:,} tokens): {self.task.metric} "
                    f"{p.metrics[self.task.metric]:.4f}, rank {d.rank + 1} of {d.competitors} "
                    f"(top {d.promoted_count} and the non-dominated go on): {verdict}"
                )
                if not d.promoted:
                    raise StopTraining(
                        f"stopped at rung {r} ({p.tokens:,} tokens): rank {d.rank + 1} of "
                        f"{d.competitors} trials at that rung and dominated; top "
                        f"{d.promoted_count} and the non-dominated go on"
                    )

        def on_step(step: int, fraction: float, loss: float, tps: float) -> None:
            self.observer.trial_step(fraction, loss)

        return train(cfg, self.task, tcfg, s.profile, on_step=on_step, on_eval=on_eval)


def heartbeat_interval(storage: Any) -> int | None:
    """The storage's heartbeat interval in seconds (None: no heartbeat, e.g. a journal file)."""
    get = getattr(storage, "get_heartbeat_interval", None)
    return get() if get is not None else None


class _Heartbeat:
    """Records the running trial's heartbeat every ``heartbeat_interval`` seconds (RDB storages
    opened with a heartbeat; otherwise nothing), so a dead worker's trial goes stale."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        interval = heartbeat_interval(storage)
        if not interval:
            return
        storage.record_heartbeat(trial_id)

        def beat() -> None:
            while not self._stop.wait(interval):
                with contextlib.suppress(Exception):  # a missed beat is retried next time
                    storage.record_heartbeat(trial_id)

        self._thread = threading.Thread(target=beat, name="archsearch-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@dataclass
class _Outcome:
    outcome: str
    reason: str
    values: list[float] = field(default_factory=list)


def _failure_reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if "out of memory" in text.lower() or type(e).__name__ == "OutOfMemoryError":
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return f"out of memory: {text[:300]}"
    return f"{type(e).__name__}: {text[:300]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _sigint_as_flag(search: Search) -> Iterator[None]:
    """Inside :func:`_critical` sections a Ctrl-C only sets a flag (the storage write finishes);
    elsewhere it raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if search._in_critical:
            search._deferred = True
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _critical(search: Search, *, raise_on_exit: bool = True) -> Iterator[None]:
    """A storage write that a Ctrl-C must not cut in half; the Ctrl-C is raised afterwards
    (``raise_on_exit``) or left in ``search._deferred`` for the caller."""
    search._in_critical += 1
    try:
        yield
    finally:
        search._in_critical -= 1
    if raise_on_exit and search._deferred and not search._in_critical:
        search._deferred = False
        raise KeyboardInterrupt
