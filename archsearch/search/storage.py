"""Where a study lives: storage URLs, opening a storage, heartbeats and recovering dead trials.

A study is stored in an Optuna storage: a SQLite file (one process), a journal file (several
processes on one machine) or a database server such as PostgreSQL (several machines); see
docs/search.md, "Storage and workers". A trial left RUNNING by a worker that died is failed and
queued again: by Optuna's heartbeat on database storages, by :func:`recover_trials` otherwise.

This is the only module that reaches into Optuna's private attributes (``study._storage``,
``FrozenTrial._trial_id``): everything else goes through :class:`TrialStore`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from archsearch.errors import ConfigError


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
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(
    spec: str | Path, name: str | None, *, heartbeat: int | None = None
) -> tuple[optuna.Study, str]:
    """An existing study and its storage URL; ``name`` None: the storage's only study. A
    one-line error naming the studies there if there is no such study."""
    url = storage_url(spec)
    storage = open_storage(url, create=False, heartbeat=heartbeat)
    names = study_names(storage)
    if name is None:
        if len(names) != 1:
            raise ConfigError(
                "--study", None, "one of " + (", ".join(names) or "(the storage has no study)")
            )
        name = names[0]
    elif name not in names:
        raise ConfigError(
            "--study", name, "one of " + (", ".join(names) or "(the storage has no study)")
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage), url


class TrialStore:
    """The small adapter over what Optuna keeps private: a study's storage seen through trial
    numbers and trial objects (live ``Trial`` or ``FrozenTrial``)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._storage = study._storage

    def system_attrs(self, trial: Any) -> dict[str, Any]:
        """Optuna's own attributes of a trial (``fixed_params``, ``failed_trial``, ...)."""
        return dict(self._storage.get_trial_system_attrs(trial._trial_id))

    def set_user_attr(self, trial: Any, key: str, value: Any) -> None:
        """Set a user attribute of any trial, also one this process did not ask for."""
        self._storage.set_trial_user_attr(trial._trial_id, key, value)

    def heartbeat_interval(self) -> int | None:
        """Seconds between heartbeats (None: no heartbeat, e.g. a journal file or SQLite
        opened without one)."""
        get = getattr(self._storage, "get_heartbeat_interval", None)
        return get() if get is not None else None

    @contextlib.contextmanager
    def heartbeat(self, trial: Any) -> Iterator[None]:
        """Record the trial's heartbeat every interval while the block runs (storages with a
        heartbeat; otherwise nothing), so a dead worker's trial goes stale."""
        interval = self.heartbeat_interval()
        if not interval:
            yield
            return
        trial_id = trial._trial_id
        self._storage.record_heartbeat(trial_id)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                with contextlib.suppress(Exception):  # a missed beat is retried next time
                    self._storage.record_heartbeat(trial_id)

        thread = threading.Thread(target=beat, name="archsearch-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


def fail_stale_or_recover(study: optuna.Study) -> None:
    """Fail trials whose heartbeat stopped (database storages with a heartbeat; they are
    re-queued), or else recover the trials of dead processes of this machine."""
    if TrialStore(study).heartbeat_interval():
        optuna.storages.fail_stale_trials(study)  # re-queued by RetryFailedTrialCallback
    else:
        recover_trials(study)


def recover_trials(study: optuna.Study, *, any_host: bool = False) -> list[int]:
    """Mark trials left RUNNING by a dead worker as interrupted (FAIL) and queue their
    parameters again; returns their numbers.

    A worker of this machine is dead when its process is gone. Workers of other machines cannot
    be checked from here: ``any_host`` treats every RUNNING trial as dead (use it only when no
    worker is running). Heartbeat storages (PostgreSQL) do this by themselves; journal files
    have no heartbeat, hence ``archsearch study recover``."""
    host = socket.gethostname()
    store = TrialStore(study)
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        w_host, _, pid = worker.partition(":")
        if not any_host and (w_host != host or not pid.isdigit() or _alive(int(pid))):
            continue
        store.set_user_attr(t, "outcome", "interrupted")
        store.set_user_attr(t, "reason", f"its worker ({worker or 'unknown'}) ended mid-trial")
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile by its (living) worker
            continue
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        out.append(t.number)
    return out


def worker_id() -> str:
    """``host:pid`` of this process, as recorded on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
