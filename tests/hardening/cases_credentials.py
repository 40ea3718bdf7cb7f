"""Malformed-input corpus, classes 7 (credentials) and 8 (PostgreSQL).

Class 7: storage URLs that carry a password, in every form a URL can carry one, given to every
command that takes a storage, on the command line or through ``ARCHSEARCH_STORAGE``; none can
be opened, and the one error line must show the URL with the password replaced by ``***``.
Class 8: PostgreSQL URLs that cannot work: no server, a wrong password or role, the superuser
over TCP (``scripts/postgres.sh`` allows only its study role there), a missing driver.

Importable on its own (standard library only): :func:`cases` returns plain dicts
``{"id", "cls", "argv", "files", "env", "expect"}``; ``{tmp}`` is the case's temporary folder.
No case connects anywhere but 127.0.0.1 / ::1 (closed ports answer at once).
"""

from __future__ import annotations

SECRET = "Hunter2-corpus-Secret"
ENV = "ARCHSEARCH_STORAGE"
PG_PORT = 54329  # scripts/postgres.sh's port (a server may or may not be running there)

SPACE = """\
version: 1
name: hcred
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

#: URLs with a password that no command can open -> what the error line must show instead
SECRET_URLS = {
    "pg-closed-port": (f"postgresql://alice:{SECRET}@127.0.0.1:1/archsearch", "alice:***@"),
    "pg-psycopg": (f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:1/db", "alice:***@"),
    "pg-ipv6": (f"postgresql://alice:{SECRET}@[::1]:1/db", "alice:***@"),
    "pg-encoded": (f"postgresql://alice:{SECRET}%40x%2F@127.0.0.1:1/db", "alice:***@"),
    "pg-query": (f"postgresql://127.0.0.1:1/db?user=alice&password={SECRET}", "password=***"),
    "pg-wrong-password": (
        f"postgresql://archsearch:{SECRET}@127.0.0.1:{PG_PORT}/archsearch",
        "archsearch:***@",
    ),
    "mysql": (f"mysql://alice:{SECRET}@127.0.0.1:1/db", "alice:***@"),
    "unknown-scheme": (f"nosuchdb://alice:{SECRET}@127.0.0.1:1/db", "alice:***@"),
    "sqlite-with-user": (f"sqlite://alice:{SECRET}@/x.db", "alice:***@"),
}


def _commands(url: str | None) -> dict[str, list[str]]:
    """The commands that take a storage; ``url`` None: it comes from the environment."""
    s = ["--storage", url] if url is not None else []
    cmds = {
        "worker": ["worker", *s, "--study", "s"],
        "recover": ["study", "recover", *s, "--study", "s"],
    }
    if url is not None:
        cmds["report"] = ["report", url, "-o", "{tmp}/rep"]
        cmds["search"] = ["search", "{tmp}/space.yaml", "-n", "1", *s, "-o", "{tmp}/o"]
        cmds["search-workers"] = [*cmds["search"], "--workers", "2"]
        cmds["worker-json"] = [*cmds["worker"], "--json"]
    return cmds


def _credential_cases() -> list[dict]:
    out = []
    for uname, (url, shown) in SECRET_URLS.items():
        for how, env in (("argv", {}), ("env", {ENV: url})):
            for cmd, argv in _commands(url if how == "argv" else None).items():
                out.append(
                    {
                        "id": f"secret-{cmd}-{how}-{uname}",
                        "cls": 7,
                        "argv": argv,
                        "files": {"space.yaml": SPACE},
                        "env": env,
                        "expect": shown,
                    }
                )
    return out


#: PostgreSQL URLs that cannot work (no password in them, or a made-up one)
PG_URLS = {
    "closed-port": "postgresql://archsearch@127.0.0.1:1/archsearch",
    "port-9": "postgresql://archsearch@127.0.0.1:9/archsearch",
    "superuser-over-tcp": f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres",
    "superuser-study-db": f"postgresql://postgres@127.0.0.1:{PG_PORT}/archsearch",
    "role-without-password": f"postgresql://archsearch@127.0.0.1:{PG_PORT}/archsearch",
    "unknown-role": f"postgresql://mallory:x@127.0.0.1:{PG_PORT}/archsearch",
    "other-database": f"postgresql://archsearch:x@127.0.0.1:{PG_PORT}/template1",
    "no-database": "postgresql://archsearch@127.0.0.1:1",
    "socket-folder-missing": "postgresql:///archsearch?host=/nonexistent/socket/dir",
    "psycopg2-driver": "postgresql+psycopg2://archsearch@127.0.0.1:1/archsearch",
    "bad-driver": "postgresql+nosuchdriver://archsearch@127.0.0.1:1/archsearch",
    "bad-port": "postgresql://archsearch@127.0.0.1:notaport/archsearch",
    "port-out-of-range": "postgresql://archsearch@127.0.0.1:99999/archsearch",
    "bad-sslmode": "postgresql://archsearch@127.0.0.1:1/archsearch?sslmode=bogus",
}


def _postgres_cases() -> list[dict]:
    out = []
    for uname, url in PG_URLS.items():
        for cmd in ("worker", "recover", "report", "search"):
            out.append(
                {
                    "id": f"postgres-{cmd}-{uname}",
                    "cls": 8,
                    "argv": _commands(url)[cmd],
                    "files": {"space.yaml": SPACE},
                    "env": {},
                    "expect": "storage",
                }
            )
    return out


def cases() -> list[dict]:
    return _credential_cases() + _postgres_cases()
