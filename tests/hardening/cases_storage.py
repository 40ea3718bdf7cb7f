"""Malformed-input corpus, class 6: storage faults (study files that are not Optuna databases,
foreign or damaged SQLite files, garbage journals, impossible paths and URLs), for every
command that opens a study: ``report``, ``worker``, ``study recover`` and ``search``.

Importable on its own (standard library only): :func:`cases` returns plain dicts
``{"id", "cls", "argv", "files", "env", "expect"}``; ``{tmp}`` in argv and file texts is the
case's temporary folder. The faults that need a mount (read-only folder, full disk) or a second
process (one writer per SQLite study) are in tests/search/test_storage_faults.py.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile

CLS = 6

SPACE = """\
version: 1
name: hstore
seq_len: 32
fixed: {vocab_size: 256, max_seq_len: 32}
params:
  d_model: {choices: [16, 32]}
layers:
  mix: uniform
  mixer:
    softmax: {n_heads: {choices: [2, 4]}}
objectives:
  - {metric: bits_per_byte, direction: minimize}
  - {metric: flops_fwd, direction: minimize}
task: {name: lm, options: {eval_tokens: 512}}
train: {budget_tokens: 2048, batch_size: 4, evals: 1, halving: {eta: 2, rungs: 1}}
"""


def _sqlite_bytes(statements: list[str]) -> bytes:
    """A SQLite file made by running ``statements`` (standard library only)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.db")
        con = sqlite3.connect(path)
        for s in statements:
            con.execute(s)
        con.commit()
        con.close()
        with open(path, "rb") as f:
            return f.read()


@functools.cache
def _files() -> dict[str, bytes]:
    """The study files every command is tried on: name -> content (expected error part)."""
    pad = "INSERT INTO pad VALUES (randomblob(3000))"
    optunaish = [
        "CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)",
        "CREATE TABLE trials (trial_id INTEGER PRIMARY KEY, number INTEGER)",
        "CREATE TABLE version_info (version_info_id INTEGER PRIMARY KEY, schema_version INT)",
        "CREATE TABLE pad (b BLOB)",
        *[pad] * 40,
    ]
    good = _sqlite_bytes(optunaish)
    half = len(good) // 2 // 4096 * 4096
    corrupt = good[:half] + b"\xa5" * 4096 + good[half + 4096 :]
    btree = bytearray(good)
    btree[4096 : 4096 + 16] = b"\xff" * 16  # the second page's b-tree header
    return {
        "text.db": b"this is a shopping list, not a database\n",
        "zeros.db": b"\0" * 4096,
        "header.db": b"SQLite format 3\x00" + b"\xff" * 84,
        "random.db": bytes((i * 97 + 13) % 256 for i in range(8192)),
        "png.db": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        "shop.db": _sqlite_bytes(["CREATE TABLE customers (id INTEGER, name TEXT)"]),
        "school.db": _sqlite_bytes(["CREATE TABLE studies (id INTEGER, subject TEXT)"]),
        "views.db": _sqlite_bytes(["CREATE TABLE t (x)", "CREATE VIEW v AS SELECT x FROM t"]),
        "corrupt.db": corrupt,
        "btree.db": bytes(btree),
        "truncated.db": good[: len(good) // 3],
        "fake-optuna.db": good,
    }


def _commands(db: str) -> dict[str, list[str]]:
    return {
        "report": ["report", db, "-o", "{tmp}/rep"],
        "worker": ["worker", "--storage", db, "--study", "s"],
        "recover": ["study", "recover", "--storage", db, "--study", "s"],
        "search": ["search", "{tmp}/space.yaml", "-n", "1", "--storage", db, "-o", "{tmp}/o"],
    }


def _file_cases() -> list[dict]:
    out = []
    for name, content in _files().items():
        for cmd, argv in _commands("{tmp}/" + name).items():
            if cmd == "search" and name == "fake-optuna.db":
                continue  # a plausible schema: the search's result depends on Optuna's checks
            out.append(
                {
                    "id": f"storage-{cmd}-{name.removesuffix('.db')}",
                    "cls": CLS,
                    "argv": argv,
                    "files": {name: content, "space.yaml": SPACE},
                    "env": {},
                    "expect": "storage",
                }
            )
    return out


def _journal_cases() -> list[dict]:
    journals = {
        "text": "just notes\n",
        "json-list": "[1, 2, 3]\n",
        "json-no-op": '{"hello": "world"}\n',
        "binary": "\x00\x01\x02garbage\n",
    }
    out = []
    for jname, text in journals.items():
        for cmd, argv in _commands("journal:{tmp}/s.journal").items():
            if cmd == "report":
                continue
            out.append(
                {
                    "id": f"journal-{cmd}-{jname}",
                    "cls": CLS,
                    "argv": argv,
                    "files": {"s.journal": text, "space.yaml": SPACE},
                    "env": {},
                    "expect": "journal",
                }
            )
    return out


def _path_cases() -> list[dict]:
    """Paths and URLs no storage can be opened at."""
    storages = {
        "missing-folder": "{tmp}/no/such/folder/study.db",
        "folder": "sqlite:///{tmp}/adir",
        "journal-folder": "journal:{tmp}/adir",
        "missing-file": "{tmp}/absent.db",
        "empty-file": "{tmp}/empty.db",
        "bad-scheme": "nosuchdb://host/db",
        "no-driver": "postgresql+nodriver://u@127.0.0.1:1/db",
        "mysql-no-driver": "mysql://u@127.0.0.1:1/db",
        "sqlite-memory-typo": "sqlite:/relative.db",
    }
    out = []
    for sname, spec in storages.items():
        for cmd, argv in _commands(spec).items():
            if cmd == "search" and sname in ("missing-file", "empty-file"):
                continue  # search creates a study there: valid
            out.append(
                {
                    "id": f"storage-{cmd}-{sname}",
                    "cls": CLS,
                    "argv": argv,
                    "files": {"adir/keep": "", "empty.db": "", "space.yaml": SPACE},
                    "env": {},
                    "expect": None,
                }
            )
    # several processes on one SQLite file: refused (one writer per SQLite study)
    out.append(
        {
            "id": "storage-search-workers-on-sqlite",
            "cls": CLS,
            "argv": ["search", "{tmp}/space.yaml", "-n", "2", "--workers", "2"]
            + ["--storage", "{tmp}/w.db", "-o", "{tmp}/o"],
            "files": {"space.yaml": SPACE},
            "env": {},
            "expect": "SQLite",
        }
    )
    return out


def cases() -> list[dict]:
    return _file_cases() + _journal_cases() + _path_cases()
