"""``archsearch doctor``: is this installation ready to profile and search?

One line per check, ``ok``, ``warn`` or ``fail`` and a detail: Python, archsearch itself (version
and where it is imported from), torch (and its CUDA build), the devices, optuna, fvcore, threads,
the shipped profiles and search spaces, the storage drivers (SQLite, psycopg for PostgreSQL) and
whether the output folder can be written, and this machine's CPU calibration. Exit status 0 unless
a check fails (then 1: a broken environment, not a bad argument, which is 2). Only torch is
imported; the other packages are looked up by their metadata, so the command takes a few seconds
at most.

``--calibrate`` then measures this machine's matmul peak (for MFU on the CPU; docs/costs.md,
"Latency") and stores it in the per-machine calibration file; ``--sizes``, ``--repeats`` and
``--threads`` say how.
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


def check_calibration() -> Check:
    """This machine's calibrated CPU peak at torch's thread count, or how to get one."""
    from archsearch.profiling.calibrate import lookup_peak

    try:
        import torch
    except ImportError:
        return _check("calibration", "warn", "unknown (no torch)")
    found = lookup_peak("float32", torch.get_num_threads())
    if found.tflops is None:
        damaged = found.source.startswith("calibration ignored")
        return _check("calibration", "warn" if damaged else "ok", found.source)
    return _check("calibration", "ok", f"float32 {1e3 * found.tflops:.1f} GFLOP/s, {found.source}")


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
        check_calibration(),
        check_profiles(),
        check_spaces(),
        check_sqlite(),
        check_package(
            "psycopg", "psycopg", missing="warn", why="PostgreSQL storage: archsearch[postgres]"
        ),
        check_output(out),
    ]


_SIZES = typer.Option(
    None,
    "--sizes",
    help="With --calibrate: the square matmul sizes to time, e.g. 1024,2048,4096 (the default).",
)
_REPEATS = typer.Option(
    None, "--repeats", help="With --calibrate: timed calls per size, the best counts (default 5)."
)
_THREADS = typer.Option(
    None,
    "--threads",
    help="With --calibrate: torch threads (default torch's, as a profile with threads: null runs).",
)


@user_errors
def doctor_cmd(
    out: Path = typer.Option(
        Path("runs"), "--out", "-o", help="Output folder to check for write access."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
    calibrate: bool = typer.Option(
        False,
        "--calibrate",
        help="Also measure this CPU's matmul peak and store it for MFU on the CPU (seconds).",
    ),
    sizes: str | None = _SIZES,
    repeats: int | None = _REPEATS,
    threads: int | None = _THREADS,
) -> None:
    """Check the installation: versions, devices, threads, the CPU calibration, the shipped
    profiles and spaces, the storage drivers, write access to the output folder. Exit 1 if a check
    fails. --calibrate: measure and store this CPU's matmul peak (MFU on the CPU)."""
    how = _calibration_settings(calibrate, sizes, repeats, threads)
    checks = run_checks(out)
    statuses = {c["status"] for c in checks}
    failed = "fail" in statuses
    worst = "fail" if failed else "warn" if "warn" in statuses else "ok"
    if not as_json:
        width = max(len(c["check"]) for c in checks)
        for c in checks:
            typer.echo(f"{c['status']:<4}  {c['check']:<{width}}  {c['detail']}")
    result: dict[str, Any] = {"status": worst, "checks": checks}
    if how is not None:
        result["calibration"] = _calibrate(how, quiet=as_json)
    if as_json:
        echo_json(result)
    if failed:
        raise typer.Exit(code=1)


def _calibration_settings(
    calibrate: bool, sizes: str | None, repeats: int | None, threads: int | None
) -> dict[str, Any] | None:
    """The benchmark's sizes, repeats and threads, checked before anything runs (None: no
    --calibrate, and then none of its options)."""
    from archsearch.dataconf import check_int
    from archsearch.errors import ConfigError

    if not calibrate:
        for name, value in (("--sizes", sizes), ("--repeats", repeats), ("--threads", threads)):
            if value is not None:
                raise ConfigError(name, value, "only with --calibrate")
        return None
    how: dict[str, Any] = {"threads": threads, "repeats": 5, "sizes": (1024, 2048, 4096)}
    if sizes is not None:
        allowed = "comma-separated matrix sizes from 16 to 16,384, e.g. 1024,2048,4096"
        words = [w.strip() for w in sizes.split(",") if w.strip()]
        if not words or not all(w.isdigit() and 16 <= int(w) <= 16384 for w in words):
            raise ConfigError("--sizes", sizes, allowed)
        how["sizes"] = tuple(sorted({int(w) for w in words}))
    if repeats is not None:
        how["repeats"] = check_int("--repeats", repeats, 1, 1000)
    if threads is not None:
        check_int("--threads", threads, 1, 4096)
    return how


def _calibrate(how: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Measure, store and (unless ``quiet``) print the peak; returns the stored entry and file."""
    from archsearch.profiling.calibrate import calibrate, fingerprint_text, save_calibration

    if not quiet:
        sizes = ", ".join(f"{n}" for n in how["sizes"])
        typer.echo(f"calibrating: square matmuls of {sizes}, best of {how['repeats']} calls ...")
    cal = calibrate(threads=how["threads"], sizes=how["sizes"], repeats=how["repeats"])
    path = save_calibration(cal)
    if not quiet:
        for r in cal.runs:
            typer.echo(f"  {r['dtype']:<8} {r['size']:>5}²: {1e3 * r['tflops']:8.1f} GFLOP/s")
        for dtype, peak in cal.peak_tflops.items():
            typer.echo(f"peak {dtype}: {1e3 * peak:.1f} GFLOP/s ({peak:.4g} TFLOP/s)")
        for note in cal.notes:
            typer.echo(f"note: {note}")
        typer.echo(f"wrote {path} ({fingerprint_text(cal.fingerprint)})")
    return {**cal.to_dict(), "source": cal.source, "file": str(path)}
