"""The trial loop of one study in this process: ask, run the pipeline, tell; Ctrl-C; workers.

:class:`Search` runs trials until the study holds the requested number of finished ones. Each
trial goes through :func:`archsearch.search.pipeline.run_pipeline`. A NaN loss, an out-of-memory
error or any other exception while profiling or training makes the trial FAIL with its reason; the
study goes on. Ctrl-C marks the running trial *interrupted* (FAIL), queues its parameters again
(``enqueue_trial``) so a resumed run retries it, and stops; every finished trial is already in
the storage. A Ctrl-C that arrives during a storage write waits until the write is done. A trial
left RUNNING by a process of this machine that no longer exists (killed, power loss) is marked
the same way when the study is next opened (:func:`archsearch.search.storage.recover_trials`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import optuna

from archsearch.quality.tasks import Task, make_task
from archsearch.search.objective import named_metrics
from archsearch.search.observer import Observer
from archsearch.search.pipeline import Outcome, TrialContext, failure_reason, run_pipeline
from archsearch.search.results import TrialRecord, count_finished, outcome_counts, trial_record
from archsearch.search.storage import (
    TrialStore,
    fail_stale_or_recover,
    recover_trials,
    worker_id,
)
from archsearch.search.study import Settings

#: the Optuna state each outcome is told as (anything else: FAIL)
_STATES = {
    "complete": optuna.trial.TrialState.COMPLETE,
    "stopped": optuna.trial.TrialState.PRUNED,
    "infeasible": optuna.trial.TrialState.PRUNED,
    "invalid": optuna.trial.TrialState.PRUNED,
}
#: user attributes a re-queued copy of a dead trial inherits and must not keep
_STALE_ATTRS = ("fidelity", "rungs", "metrics", "curve", "trained_tokens", "trained_flops")


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
        self.study = study
        self.settings = settings
        self.observer = observer or Observer()
        self.task = task or make_task(
            settings.task, settings.task_options, seq_len=settings.space.seq_len
        )
        self.worker = worker_id()
        self.store = TrialStore(study)
        self._interrupted = False
        self._deferred = False
        """a Ctrl-C that arrived during a storage write"""
        self._in_critical = 0
        self.context = TrialContext(
            study,
            settings,
            self.task,
            self.observer,
            critical=lambda: _critical(self),
            names=named_metrics(settings.space),
        )

    # -- bookkeeping --

    def finished(self) -> int:
        return count_finished(self.study.get_trials(deepcopy=False))

    def recover(self) -> list[int]:
        """Recover the trials of dead processes of this machine (see :func:`recover_trials`)."""
        return recover_trials(self.study)

    def housekeeping(self) -> None:
        """Fail trials whose heartbeat stopped, or recover those of dead local processes."""
        fail_stale_or_recover(self.study)

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

    def run_trial(self, n_trials: int | None = None) -> TrialRecord:
        """Ask for a trial, run it (unless it is a surplus one), tell its outcome."""
        trial, queued = self._ask()
        t0 = time.monotonic()
        try:
            with self.store.heartbeat(trial):
                if self._deferred:
                    raise KeyboardInterrupt
                if n_trials is not None and not queued and self._surplus(trial, n_trials):
                    outcome = Outcome("surplus", "another worker started the last trial first")
                else:
                    outcome = run_pipeline(self.context, trial)
        except KeyboardInterrupt:
            outcome = Outcome("interrupted", "interrupted (Ctrl-C) before training finished")
        except Exception as e:  # failures are data: record, go on
            outcome = Outcome("failed", failure_reason(e))
        if outcome.outcome == "interrupted":
            self._interrupted = True
        return self._tell(trial, outcome, time.monotonic() - t0)

    def _ask(self) -> tuple[optuna.Trial, bool]:
        """A new trial, marked with this worker; whether it was queued (a re-run)."""
        with _critical(self, raise_on_exit=False):
            trial = self.study.ask()
            for key in _STALE_ATTRS:
                if key in trial.user_attrs:  # inherited by a re-queued copy of a dead trial
                    trial.set_user_attr(key, [] if key == "fidelity" else None)
            trial.set_user_attr("worker", self.worker)
            sys_attrs = self.store.system_attrs(trial)
            failed = sys_attrs.get("failed_trial")
            if failed is not None:
                trial.set_user_attr("retry_of", failed)
        return trial, failed is not None or "fixed_params" in sys_attrs

    def _tell(self, trial: optuna.Trial, outcome: Outcome, seconds: float) -> TrialRecord:
        state = _STATES.get(outcome.outcome, optuna.trial.TrialState.FAIL)
        self._deferred = False
        with _critical(self, raise_on_exit=False):
            trial.set_user_attr("outcome", outcome.outcome)
            trial.set_user_attr("reason", outcome.reason)
            trial.set_user_attr("wall_seconds", round(seconds, 3))
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
