"""``archsearch doctor``: is this installation ready to profile and search?

One line per check, ``ok``, ``warn`` or ``fail`` and a detail: Python, archsearch itself (version
and where it is imported from), torch (and its CUDA build), the devices, optuna, fvcore, threads,
the shipped profiles and search spaces, the storage drivers (SQLite, psycopg for PostgreSQL) and
whether the output folder can be written. Exit status 0 unless a check fails (then 1: a broken
environment, not a bad argument, which is 2). Only torch is imported; the other packages are looked
up by their metadata, so the command takes a few seconds at most.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from archsearch.cli._common import echo_json, user_errors

Check = dict[str, str]


def _check(name: str, status: str, detail: str) -> Check:
    return {"check": name, "status": status, "detail": detail}


def _version_of(dist: str, module: str) -> str | None:
    """The installed version of a distribution whose ``module`` can be imported, else None."""
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    detail = f"{platform.python_version()} ({sys.executable})"
    return _check("python", "ok" if ok else "fail", detail if ok else f"{detail}: needs >= 3.10")


def check_archsearch() -> Check:
    import archsearch

    where = Path(archsearch.__file__).parent
    return _check("archsearch", "ok", f"{archsearch.__version__} ({where})")


def check_torch() -> Check:
    try:
        import torch
    except ImportError as e:
        return _check("torch", "fail", f"cannot import torch: {e}")
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    return _check("torch", "ok", f"{torch.__version__} ({build})")


def check_devices() -> Check:
    from archsearch.profiling.env import cpu_name

    cpu = f"cpu: {cpu_name()}, {os.cpu_count()} cores"
    try:
        import torch
    except ImportError:
        return _check("devices", "warn", f"{cpu}; GPUs unknown (no torch)")
    if not torch.version.cuda:
        return _check("devices", "ok", f"{cpu}; no CUDA (a CPU build of torch)")
    if not torch.cuda.is_available():
        why = "a CUDA build of torch, but torch.cuda.is_available() is False"
        return _check("devices", "warn", f"{cpu}; no CUDA device ({why})")
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append(f"cuda:{i}: {props.name}, {props.total_memory / 2**30:.1f} GiB")
    return _check("devices", "ok", "; ".join([cpu, *gpus]))


def check_package(name: str, module: str, *, missing: str, why: str) -> Check:
    """A dependency found by its metadata; ``missing``: the status when it is absent."""
    version = _version_of(name, module)
    if version is None:
        return _check(name, missing, f"not installed ({why})")
    return _check(name, "ok", version)


def check_threads() -> Check:
    try:
        import torch

        n = torch.get_num_threads()
    except ImportError:
        n = None
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    cores = os.cpu_count() or 1
    detail = f"torch {n}, OMP_NUM_THREADS {omp}, {cores} cores"
    if n is not None and n > cores:
        return _check("threads", "warn", f"{detail}: more threads than cores")
    return _check("threads", "ok", detail)


def _shipped(name: str, folder: Path, names: list[str], load: Callable[[str], Any]) -> Check:
    """Every shipped YAML of a kind loads; fails when there is none (a broken install)."""
    if not names:
        return _check(name, "fail", f"none found in {folder} (a broken install: reinstall)")
    for n in names:
        try:
            load(n)
        except Exception as e:  # noqa: BLE001  (any failure is reported, never raised)
            return _check(name, "fail", f"{n} does not load: {e}")
    return _check(name, "ok", f"{', '.join(names)} ({folder})")


def check_profiles() -> Check:
    from archsearch.profiling.profiles import PROFILES_DIR, load_profile, shipped_profiles

    return _shipped("profiles", PROFILES_DIR, shipped_profiles(), load_profile)


def check_spaces() -> Check:
    from archsearch.search.space import SPACES_DIR, load_space, shipped_spaces

    return _shipped("spaces", SPACES_DIR, shipped_spaces(), load_space)


def check_sqlite() -> Check:
    try:
        import sqlite3
    except ImportError as e:
        return _check("sqlite", "fail", f"cannot import sqlite3 (the default storage): {e}")
    return _check("sqlite", "ok", f"SQLite {sqlite3.sqlite_version}")


def check_output(out: Path) -> Check:
    """``out`` can be written: a file is created (and removed) in it, or in its nearest existing
    parent when it does not exist yet (the folder itself is not created)."""
    target = out
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return _check("output", "fail", f"{out}: not writable ({target} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as e:
        return _check("output", "fail", f"{out}: not writable ({e.strerror or e})")
    return _check("output", "ok", f"{out} writable" if target == out else f"{out} can be created")


def run_checks(out: Path) -> list[Check]:
    return [
        check_python(),
        check_archsearch(),
        check_torch(),
        check_devices(),
        check_package("optuna", "optuna", missing="fail", why="archsearch search needs it"),
        check_package("fvcore", "fvcore", missing="warn", why="the FLOP cross-check needs it"),
        check_threads(),
        check_profiles(),
        check_spaces(),
        check_sqlite(),
        check_package(
            "psycopg", "psycopg", missing="warn", why="PostgreSQL storage: archsearch[postgres]"
        ),
        check_output(out),
    ]


@user_errors
def doctor_cmd(
    out: Path = typer.Option(
        Path("runs"), "--out", "-o", help="Output folder to check for write access."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Check the installation: versions, devices, threads, the shipped profiles and spaces, the
    storage drivers, write access to the output folder. Exit 1 if a check fails."""
    checks = run_checks(out)
    statuses = {c["status"] for c in checks}
    failed = "fail" in statuses
    if as_json:
        worst = "fail" if failed else "warn" if "warn" in statuses else "ok"
        echo_json({"status": worst, "checks": checks})
    else:
        width = max(len(c["check"]) for c in checks)
        for c in checks:
            typer.echo(f"{c['status']:<4}  {c['check']:<{width}}  {c['detail']}")
    if failed:
        raise typer.Exit(code=1)
