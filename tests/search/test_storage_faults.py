"""Storage faults end in one line and exit status 2, and leave the study file as it was
(sha256 before and after): a damaged SQLite page, a read-only folder, a full disk, a file that
is not an Optuna database, a foreign SQLite file (Optuna must not add its tables to it). A
SQLite study is written by one process at a time. Commands run in-process (typer's runner)
except the two end-to-end ones.

Read-only and full disks are real mounts when this runs as root where ``mount`` works (a
tmpfs remounted read-only; a 256 KiB tmpfs filled up); otherwise the read-only case falls back
to ``chattr +i`` and the full disk to ``RLIMIT_FSIZE`` in a subprocess, and each is skipped
when neither is possible.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from _spaces import tiny_space
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.profiling.profiles import Profile
from archsearch.search import storage as storage_mod
from archsearch.search.run import WorkerLaunch, run_search
from archsearch.search.space import parse_space
from archsearch.search.storage import STORAGE_ENV, open_storage, redact, storage_url
from archsearch.search.study import TARGET, open_study, settings_from

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()

SPACE = tiny_space(
    "tinyf",
    hsm=False,
    params_max=None,
    train="{budget_tokens: 2048, batch_size: 4, evals: 1, halving: {eta: 2, rungs: 1}}",
)


@pytest.fixture(scope="module")
def study_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real archsearch study (settings recorded, three trials asked for) as SQLite bytes."""
    path = tmp_path_factory.mktemp("study") / "study.db"
    settings = settings_from(parse_space(SPACE, source="tinyf.yaml"), profile=Profile())
    st = open_study(settings, open_storage(storage_url(path)), "tinyf", n_trials=2)
    st.set_user_attr(TARGET, 2)
    for _ in range(3):
        st.ask().set_user_attr("pad", "x" * 3000)  # a few pages of trial rows
    del st
    return path.read_bytes()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(args: list[str], expect: str = "") -> str:
    """Run the CLI in-process: exit status 2 and exactly one ``error:`` line on stderr."""
    r = runner.invoke(app, args)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (args, r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
    assert "Traceback" not in r.stderr and expect in lines[0], (args, lines)
    return lines[0]


def commands(db: Path, space: Path) -> list[list[str]]:
    """Every command that opens a study file: search (resume), worker, study recover, report."""
    return [
        ["search", str(space), "-n", "1", "--storage", str(db), "--study", "tinyf", "--json"],
        ["worker", "--storage", str(db), "--study", "tinyf", "--json"],
        ["study", "recover", "--storage", str(db), "--study", "tinyf"],
        ["report", str(db), "-o", str(db.parent.parent / f"rep-{uuid.uuid4().hex[:6]}")],
    ]


@pytest.fixture
def space(tmp_path: Path) -> Path:
    p = tmp_path / "tinyf.yaml"
    p.write_text(SPACE)
    return p


def test_corrupt_page(tmp_path: Path, space: Path, study_bytes: bytes) -> None:
    db = tmp_path / "d" / "study.db"
    db.parent.mkdir()
    data = bytearray(study_bytes)
    page = 4096 * (len(data) // 4096 // 2)  # a page in the middle of the file
    data[page : page + 4096] = b"\xa5" * 4096
    db.write_bytes(bytes(data))
    before = sha(db)
    for args in commands(db, space):
        one_line(args, "undamaged")
    assert sha(db) == before


def test_foreign_sqlite_is_left_alone(tmp_path: Path, space: Path) -> None:
    db = tmp_path / "d" / "shop.db"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'ada')")
    con.commit()
    con.close()
    before = sha(db)
    for args in commands(db, space):
        one_line(args, "other tables: customers")
    assert sha(db) == before
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert tables == {"customers"}  # Optuna added nothing


@pytest.mark.parametrize(
    "content",
    [b"hello, not a database\n", b"\x00" * 512, b"SQLite format 3\x00" + b"\xff" * 84],
    ids=["text", "zeros", "sqlite-header-only"],
)
def test_not_an_optuna_database(tmp_path: Path, space: Path, content: bytes) -> None:
    db = tmp_path / "d" / "x.db"
    db.parent.mkdir()
    db.write_bytes(content)
    before = sha(db)
    for args in commands(db, space):
        one_line(args, "storage")
    assert sha(db) == before


def test_foreign_journal_file(tmp_path: Path) -> None:
    j = tmp_path / "notes.journal"
    j.write_text("just some notes\n")
    before = sha(j)
    one_line(["worker", "--storage", str(j), "--study", "x"], "journal")
    one_line(["study", "recover", "--storage", f"journal:{j}", "--study", "x"], "journal")
    assert sha(j) == before


@contextlib.contextmanager
def mounted(where: Path, size: str) -> Iterator[bool]:
    """A tmpfs at ``where`` (True), or False where this process cannot mount."""
    where.mkdir(parents=True, exist_ok=True)
    ok = os.geteuid() == 0 and shutil.which("mount") is not None
    if ok:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
        )
        ok = r.returncode == 0
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_read_only_folder(tmp_path: Path, space: Path, study_bytes: bytes) -> None:
    ro = tmp_path / "ro"
    with mounted(ro, "1m") as ok:
        db = ro / "study.db"
        db.write_bytes(study_bytes)
        before = sha(db)
        how = "mount"
        if ok:
            r = subprocess.run(["mount", "-o", "remount,ro", str(ro)], capture_output=True)
            assert r.returncode == 0, r.stderr
        elif (
            shutil.which("chattr")
            and not subprocess.run(
                ["chattr", "+i", str(db), str(ro)], capture_output=True
            ).returncode
        ):
            how = "chattr"
        else:
            pytest.skip("no read-only mount and no chattr +i here")
        try:
            for args in commands(db, space)[:3]:  # the ones that write
                one_line(args, "read-only")
            # reading a read-only study is fine: the report goes elsewhere
            r = runner.invoke(app, ["report", str(db), "-o", str(tmp_path / "rep"), "--json"])
            assert r.exit_code == 0, (how, r.stderr)
            assert sha(db) == before
        finally:
            if how == "chattr":
                subprocess.run(["chattr", "-i", str(db), str(ro)], capture_output=True)


def fill(folder: Path) -> None:
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


def test_full_disk(tmp_path: Path, space: Path, study_bytes: bytes, monkeypatch) -> None:
    full = tmp_path / "full"
    with mounted(full, "256k") as ok:
        if not ok:
            _full_disk_by_rlimit(tmp_path, space, study_bytes)
            return
        db = full / "study.db"
        db.write_bytes(study_bytes)
        fill(full)
        before = sha(db)
        for args in commands(db, space)[:3]:
            one_line(args, "KiB free")
        one_line(["search", str(space), "-n", "1", "--storage", str(full / "new.db")], "free")
        assert not (full / "new.db").exists()
        # past the free-space check (as if the disk filled up meanwhile): SQLite's own error
        monkeypatch.setattr(storage_mod, "MIN_FREE_BYTES", 0)
        with pytest.raises(ConfigError, match="full"):
            run_search(str(space), trials=1, storage=str(db), study="tinyf", report=False)
        assert sha(db) == before


def _full_disk_by_rlimit(tmp_path: Path, space: Path, study_bytes: bytes) -> None:
    """No mount here: the same through RLIMIT_FSIZE (the file cannot grow) in a subprocess."""
    db = tmp_path / "study.db"
    db.write_bytes(study_bytes)
    before = sha(db)
    code = (
        "import resource, sys; n = int(sys.argv[1]); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
        "from archsearch.cli import main; sys.argv = ['archsearch', *sys.argv[2:]]; main()"
    )
    args = ["search", str(space), "-n", "1", "--storage", str(db), "--study", "tinyf"]
    r = subprocess.run(
        [sys.executable, "-c", code, str(len(study_bytes)), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert sha(db) == before


def test_one_process_per_sqlite_study(tmp_path: Path, space: Path, study_bytes: bytes) -> None:
    """SQLite takes one writing process: a second search or worker on a study another process
    holds is refused in one line (several processes: a journal file or a database server, which
    is also what --workers N needs)."""
    db = tmp_path / "study.db"
    db.write_bytes(study_bytes)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = sha(db)
        for args in commands(db, space)[:3]:
            one_line(args, "no other archsearch process")
        assert sha(db) == before
        # reading it meanwhile is fine
        r = runner.invoke(app, ["report", str(db), "-o", str(tmp_path / "rep"), "--json"])
        assert r.exit_code == 0, r.stderr
    finally:
        holder.kill()
        holder.wait()
    # the holder gone, the same process may open it again and again
    for _ in range(2):
        store = open_storage(storage_url(db), exclusive=True)
        storage_mod.release(storage_url(db))
        assert store is not None


def test_end_to_end_foreign_sqlite(tmp_path: Path) -> None:
    """The same through a real ``python -m archsearch`` process."""
    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.commit()
    con.close()
    before = sha(db)
    r = subprocess.run(
        [sys.executable, "-m", "archsearch", "report", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "other tables: orders" in r.stderr and sha(db) == before


# ---------------------------------------------------------------------------------------------
# credentials


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice:s3cret-Pw@db.example:5432/archsearch",
        "postgresql+psycopg://alice:s3cret-Pw@10.0.0.1/archsearch?sslmode=require",
        "mysql://alice:s3cret-Pw@host/db",
        "postgresql://host/db?user=alice&password=s3cret-Pw",
        "archsearch search x.yaml --storage 'postgresql://alice:s3cret-Pw@h/db' --study y",
    ],
)
def test_redact(url: str) -> None:
    shown = redact(url)
    assert "s3cret-Pw" not in shown and "***" in shown
    assert redact(shown) == shown


def test_redact_leaves_urls_without_password() -> None:
    for url in ("sqlite:////tmp/x.db", "journal:/tmp/a.journal", "postgresql://alice@h/db"):
        assert redact(url) == url


def test_workers_get_the_url_from_the_environment() -> None:
    url = "postgresql://alice:s3cret-Pw@127.0.0.1:1/archsearch"
    launch = WorkerLaunch(url, "s", 4, 2, [], 1, "tpe", 0)
    for i in range(2):
        assert not any("s3cret" in w for w in launch.command(i, 0))
        assert launch.env(i)[STORAGE_ENV] == url


def test_password_never_in_an_error_line() -> None:
    url = "postgresql://alice:s3cret-Pw@127.0.0.1:1/archsearch"
    for args in (
        ["worker", "--storage", url, "--study", "x"],
        ["study", "recover", "--storage", url, "--study", "x"],
        ["report", url],
    ):
        line = one_line(args, "storage")
        assert "s3cret" not in line and "alice:***@" in line
    r = runner.invoke(app, ["worker", "--study", "x"], env={STORAGE_ENV: url})
    assert r.exit_code == 2 and "s3cret" not in r.stderr and "alice:***@" in r.stderr
