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
import errno
import fcntl
import json
import os
import re
import socket
import sqlite3
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from archsearch.errors import ConfigError

#: the environment variable through which ``archsearch worker`` may get its storage URL (the
#: workers of ``search --workers N`` get it there, so no password shows in a process list)
STORAGE_ENV = "ARCHSEARCH_STORAGE"
#: a study file is not written when its folder has less free space than this
MIN_FREE_BYTES = 1 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OPTUNA_TABLES = frozenset({"studies", "trials", "version_info"})
_PASSWORD_IN_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):\S*@")
_PASSWORD_IN_QUERY = re.compile(r"(?i)\b(password=)[^&\s'\"]*")
#: SQLite study files this process holds exclusively (path -> open descriptor)
_HELD: dict[str, int] = {}


def redact(text: str) -> str:
    """``text`` (a storage URL, or a line holding URLs) with every password replaced by
    ``***``: ``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``. Used
    wherever a storage URL is shown: error lines, ``--json`` output, report.md, logs."""
    return _PASSWORD_IN_QUERY.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1:***@", str(text)))


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


def open_storage(
    url: str,
    *,
    create: bool = True,
    heartbeat: int | None = None,
    write: bool = True,
    exclusive: bool = False,
) -> Any:
    """An Optuna storage: RDB (SQLite, PostgreSQL, ...) or a journal file (``journal:PATH``).

    ``heartbeat`` (seconds, RDB only): each running trial records a heartbeat; a trial whose
    heartbeat is older than twice that is failed by the next worker that looks and re-queued
    (``RetryFailedTrialCallback``). A file is checked before Optuna touches it (see
    :func:`check_file`): ``create`` False never makes a study file nor adds Optuna's tables to
    one, ``write`` False lets a read-only study be read. ``exclusive``: this process must be
    the only one writing a SQLite study (docs/search.md, "Storage and workers"). A one-line
    error (the password hidden) if the storage cannot be opened.
    """
    path = storage_path(url)
    if path is not None:
        check_file(url, path, create=create, write=write)
        if exclusive and url.startswith("sqlite:"):
            _hold(url, path)
    try:
        if url.startswith("journal:"):
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            return JournalStorage(JournalFileBackend(str(path)))
        if heartbeat is not None and not url.startswith("sqlite:"):
            # Optuna 4.9+ calls these deprecated or experimental: warnings, not the user's fault
            warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message=".*RetryFailedTrialCallback")
            return optuna.storages.RDBStorage(
                url,
                skip_table_creation=not create,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=3),
            )
        # an existing study is never migrated nor given missing tables
        return optuna.storages.RDBStorage(url, skip_table_creation=not create)
    except Exception as e:  # sqlalchemy/driver errors: bad scheme, missing driver, no server
        raise ConfigError(
            "storage",
            redact(url),
            "a storage Optuna can open (sqlite:///PATH, postgresql://..., journal:PATH): "
            + _first_line(e),
        ) from None


def storage_path(url: str) -> Path | None:
    """The file of a SQLite or journal storage URL (None: a database server)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        return Path(urllib.parse.unquote(path)) if path and path != ":memory:" else None
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:"))
    return None


def check_file(url: str, path: Path, *, create: bool, write: bool) -> None:
    """Refuse, in one line and before anything is written, a study file Optuna must not open:
    a folder, a file that is neither SQLite nor an Optuna journal, a SQLite file holding other
    tables (Optuna would add its own to it), a damaged one, a read-only one or folder (when
    writing) and a folder whose disk is (nearly) full. An empty file counts as no study."""
    shown = redact(url)
    if not path.parent.is_dir():
        raise ConfigError("storage", shown, f"a file in an existing folder ({path.parent})")
    exists = path.exists()
    if exists and not path.is_file():
        raise ConfigError("storage", shown, "a study file (this path is not a regular file)")
    if exists and path.stat().st_size > 0:
        if url.startswith("journal:"):
            _check_journal(shown, path)
        else:
            _check_sqlite(shown, path, create=create)
    elif not create:
        raise ConfigError("storage", shown, "an existing storage file (no study there)")
    if not write:
        return
    writable = os.access(path.parent, os.W_OK) and (not exists or os.access(path, os.W_OK))
    if not writable:
        raise ConfigError(
            "storage", shown, "a study file and folder this process can write (read-only)"
        )
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        raise ConfigError(
            "storage",
            shown,
            f"a folder with at least {MIN_FREE_BYTES >> 10} KiB free (its disk has "
            f"{free >> 10} KiB)",
        )


def _check_sqlite(shown: str, path: Path, *, create: bool) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as e:
        raise ConfigError("storage", shown, f"a readable study file ({e.strerror})") from None
    if head != _SQLITE_MAGIC:
        raise ConfigError("storage", shown, "an Optuna study database (this is not SQLite)")
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            check = [r[0] for r in con.execute("PRAGMA quick_check(1)")]
        finally:
            con.close()
    except sqlite3.Error as e:
        what = " ".join(str(e).split())
        raise ConfigError(
            "storage", shown, f"an undamaged Optuna study database (SQLite: {what})"
        ) from None
    if check != ["ok"]:
        what = " ".join(str(check[0] if check else "no answer").replace("***", "").split())
        raise ConfigError("storage", shown, f"an undamaged Optuna study database (SQLite: {what})")
    if tables and not tables >= _OPTUNA_TABLES:
        other = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        raise ConfigError(
            "storage",
            shown,
            f"an Optuna study database (this SQLite file holds other tables: {other}; "
            "left as it was)",
        )
    if not tables and not create:
        raise ConfigError("storage", shown, "an existing study database (this one is empty)")


def _check_journal(shown: str, path: Path) -> None:
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
    except OSError as e:
        raise ConfigError("storage", shown, f"a readable study file ({e.strerror})") from None
    try:
        entry = json.loads(first)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or "op_code" not in entry:
        raise ConfigError(
            "storage", shown, "an Optuna journal file (its first line is not a journal entry)"
        )


def _hold(url: str, path: Path) -> None:
    """Hold the SQLite study file for this process: a second process that wants to write it
    gets a one-line error (SQLite: one writing process; journal files and database servers
    take several)."""
    key = str(path.resolve())
    if key in _HELD:
        return
    fd = os.open(key, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(
            "--storage",
            redact(url),
            "a SQLite study no other archsearch process is running (SQLite takes one process; "
            "for several use journal:PATH or a database server)",
        ) from None
    _HELD[key] = fd


def release(url: str) -> None:
    """Give up this process's hold on a SQLite study file (see :func:`open_storage`)."""
    path = storage_path(url)
    fd = _HELD.pop(str(path.resolve()), None) if path is not None else None
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn a storage failure while the block runs (a full disk, a read-only or damaged file,
    a lost server) into a one-line error naming the storage, its password hidden."""
    try:
        yield
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
        cause = e.__cause__ if isinstance(e.__cause__, Exception) else e
        raise ConfigError(
            "storage", redact(url), "a working storage: " + _first_line(cause)
        ) from None
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            raise
        raise ConfigError("storage", redact(url), f"a working storage: {e.strerror}") from None


@contextlib.contextmanager
def held(url: str) -> Iterator[None]:
    """The block runs with storage failures as one-line errors (:func:`storage_errors`); at its
    end this process gives up its hold on a SQLite study file (``open_storage(exclusive=True)``),
    so the next run, here or in another process, may open it."""
    try:
        with storage_errors(url):
            yield
    finally:
        release(url)


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return redact(" ".join(text.splitlines()[0].split()) if text else type(e).__name__)


def study_names(storage: Any) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(
    spec: str | Path,
    name: str | None,
    *,
    heartbeat: int | None = None,
    write: bool = True,
    exclusive: bool = False,
) -> tuple[optuna.Study, str]:
    """An existing study and its storage URL; ``name`` None: the storage's only study. A
    one-line error naming the studies there if there is no such study. ``exclusive``: the
    caller holds a SQLite study file and gives it up with :func:`release` (or :func:`held`)."""
    url = storage_url(spec)
    storage = open_storage(url, create=False, heartbeat=heartbeat, write=write, exclusive=exclusive)
    try:
        with storage_errors(url):
            names = study_names(storage)
            name = _the_study(names, name)
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            return optuna.load_study(study_name=name, storage=storage), url
    except BaseException:
        release(url)
        raise


def _the_study(names: list[str], name: str | None) -> str:
    if name is None:
        if len(names) != 1:
            raise ConfigError(
                "--study", None, "one of " + (", ".join(names) or "(the storage has no study)")
            )
        return names[0]
    if name not in names:
        raise ConfigError(
            "--study", name, "one of " + (", ".join(names) or "(the storage has no study)")
        )
    return name


class TrialStore:
    """The small adapter over what Optuna keeps private: a study's storage seen through trial
    numbers and trial objects (live ``Trial`` or ``FrozenTrial``)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._storage = study._storage

    @property
    def storage(self) -> Any:
        """The study's Optuna storage object (to hand to other tools, e.g. optuna-dashboard)."""
        return self._storage

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

        def beat() -> None:
            with contextlib.suppress(Exception):  # a missed beat is retried next time
                self._storage.record_heartbeat(trial_id)

        with repeating(interval, beat, "archsearch-heartbeat"):
            yield


@contextlib.contextmanager
def repeating(every: float, fn: Callable[[], None], name: str) -> Iterator[None]:
    """While the block runs, call ``fn()`` every ``every`` seconds on a daemon thread (first
    after ``every``); stopped, and waited for up to 5 s, when the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            fn()

    thread = threading.Thread(target=loop, name=name, daemon=True)
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
