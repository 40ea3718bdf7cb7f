"""A CPU's measured matmul peak, for MFU on the CPU (docs/costs.md, "Latency").

A GPU profile states its device's dense peak (``peak_tflops``); a CPU's varies too much with the
model, the cores and the thread count for a shipped figure. ``archsearch doctor --calibrate``
measures it once per machine instead: square matmuls of a few sizes, best of N calls each, at the
thread count the runs will use, in float32 (and bfloat16 where the CPU has native bf16 dot
products). The best rate is stored in a per-machine calibration file, ``calibration.json`` in the
archsearch cache folder, keyed by a fingerprint of the machine: the CPU's model, its core count,
torch's version and the thread count. A profile on the CPU without a ``peak_tflops`` of its own
uses the entry whose fingerprint is this machine's (:func:`lookup_peak`); entries of other machines
or thread counts are ignored, with a note saying so.

The file::

    {"format": 1,
     "machines": [{"fingerprint": {"cpu": "...", "cores": 2, "torch": "2.6.0", "threads": 2},
                   "date": "2025-01-31T12:00:00+00:00",
                   "peak_tflops": {"float32": 0.174},
                   "runs": [{"dtype": "float32", "size": 2048, "best_s": 0.098, "tflops": 0.174}],
                   "repeats": 5}]}
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError
from archsearch.profiling.env import cpu_name, torch_threads

FORMAT = 1
FILE_NAME = "calibration.json"
#: the cache folder's variable (the same one the corpora's cache uses)
CACHE_ENV = "ARCHSEARCH_CACHE"
DEFAULT_SIZES = (1024, 2048, 4096)
DEFAULT_REPEATS = 5
#: the dtypes a calibration may hold (a profile's dtype picks one)
DTYPES = ("float32", "bfloat16", "float16")
#: what to run to get (or replace) a calibration, quoted in every note
HOW = "run `archsearch doctor --calibrate`"
_REDO = f"a file written by `archsearch doctor --calibrate` ({HOW} to replace it)"


def calibration_path() -> Path:
    """``$ARCHSEARCH_CACHE/calibration.json``, else under ``$XDG_CACHE_HOME/archsearch`` or
    ``~/.cache/archsearch``: the cache folder the corpora use."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "archsearch"
    return root / FILE_NAME


def fingerprint(threads: int) -> dict[str, Any]:
    """What a peak depends on: the CPU's model, its cores, torch's version, the thread count."""
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count() or 1,
        "torch": torch.__version__,
        "threads": threads,
    }


def fingerprint_text(fp: dict[str, Any]) -> str:
    """``Intel Xeon ..., 2 cores, torch 2.6.0, 2 threads``: a fingerprint in one short phrase."""
    threads = f"{fp['threads']} thread" + "s" * (fp["threads"] != 1)
    return f"{fp['cpu']}, {fp['cores']} cores, torch {fp['torch']}, {threads}"


def bf16_native() -> bool:
    """Whether the CPU has native bfloat16 dot products (AVX512-BF16 or AMX-BF16 on x86, BF16 on
    Arm); elsewhere torch emulates bfloat16 and a bf16 peak would mean nothing."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = {
        w
        for line in text.splitlines()
        if line.startswith(("flags", "Features"))
        for w in line.split(":", 1)[-1].split()
    }
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


@dataclass
class Calibration:
    """One machine's measured peak (at one thread count)."""

    fingerprint: dict[str, Any]
    date: str
    """when it was measured, ISO 8601 (UTC)"""
    peak_tflops: dict[str, float]
    """per dtype: the best rate of any size"""
    runs: list[dict[str, Any]] = field(default_factory=list)
    """per dtype and size: the best call's seconds and its TFLOP/s"""
    repeats: int = DEFAULT_REPEATS
    notes: list[str] = field(default_factory=list)
    """what was not measured, and why"""

    @property
    def source(self) -> str:
        """``calibrated 2025-01-31 on <fingerprint>``: where a profile's peak came from."""
        return f"calibrated {self.date[:10]} on {fingerprint_text(self.fingerprint)}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matmul_seconds(n: int, dtype: Any, repeats: int) -> float:
    """The best of ``repeats`` timed ``n x n @ n x n`` products (after one untimed call)."""
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate(
    *,
    threads: int | None = None,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    repeats: int = DEFAULT_REPEATS,
) -> Calibration:
    """Measure this machine's matmul peak at ``threads`` (None: torch's current count, what a
    profile with ``threads: null`` runs with): float32 always, bfloat16 where it is native."""
    import torch

    dtypes = ["float32"]
    notes = []
    if bf16_native():
        dtypes.append("bfloat16")
    else:
        notes.append("bfloat16 not measured: no native bf16 dot products (AVX512-BF16/AMX)")
    runs: list[dict[str, Any]] = []
    with torch_threads(threads):
        used = torch.get_num_threads()
        for dt in dtypes:
            for n in sizes:
                s = _matmul_seconds(n, getattr(torch, dt), repeats)
                runs.append({"dtype": dt, "size": n, "best_s": s, "tflops": 2 * n**3 / s / 1e12})
    peaks = {dt: max(r["tflops"] for r in runs if r["dtype"] == dt) for dt in dtypes}
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Calibration(fingerprint(used), now, peaks, runs, repeats, notes)


# -- the file --------------------------------------------------------------------------------------


def _positive(value: Any, where: str, source: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ConfigError(where, value, f"a positive number of TFLOP/s; {_REDO}", source=source)
    return float(value)


def _entry(data: Any, i: int, source: str) -> Calibration:
    """One ``machines[i]`` entry, every field checked."""
    where = f"machines[{i}]"
    if not isinstance(data, dict):
        raise ConfigError(where, data, f"a mapping; {_REDO}", source=source)
    fp = data.get("fingerprint")
    types = {"cpu": str, "cores": int, "torch": str, "threads": int}
    if not isinstance(fp, dict) or any(
        not isinstance(fp.get(k), t) or isinstance(fp.get(k), bool) for k, t in types.items()
    ):
        allowed = f"a mapping of cpu, torch (text), cores, threads (integers); {_REDO}"
        raise ConfigError(f"{where}.fingerprint", fp, allowed, source=source)
    date = data.get("date")
    if not isinstance(date, str) or len(date) < 10:
        raise ConfigError(f"{where}.date", date, f"an ISO date; {_REDO}", source=source)
    peaks = data.get("peak_tflops")
    if not isinstance(peaks, dict) or not peaks or not set(peaks) <= set(DTYPES):
        allowed = f"a mapping of dtype ({', '.join(DTYPES)}) to TFLOP/s; {_REDO}"
        raise ConfigError(f"{where}.peak_tflops", peaks, allowed, source=source)
    checked = {k: _positive(v, f"{where}.peak_tflops.{k}", source) for k, v in peaks.items()}
    runs, repeats, notes = data.get("runs", []), data.get("repeats", 1), data.get("notes", [])
    if not isinstance(runs, list) or not isinstance(notes, list) or not isinstance(repeats, int):
        got = f"runs {type(runs).__name__}, repeats {type(repeats).__name__}"
        allowed = f"runs and notes lists, repeats an integer; {_REDO}"
        raise ConfigError(where, allowed=allowed, source=source, got=got)
    return Calibration(dict(fp), date, checked, runs, repeats, [str(n) for n in notes])


def load_calibrations(path: Path | None = None) -> list[Calibration]:
    """Every entry of a calibration file ([] when there is none); a damaged file is a one-line
    :class:`ConfigError` naming it, the field and what is allowed."""
    path = path or calibration_path()
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ConfigError("calibration", source, f"a readable file ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        got = f"not JSON ({e})"
        raise ConfigError("calibration", allowed=_REDO, source=source, got=got) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = "no format" if not isinstance(data, dict) else f"format {data.get('format')!r}"
        raise ConfigError("format", allowed=f"{FORMAT}; {_REDO}", source=source, got=got)
    machines = data.get("machines")
    if not isinstance(machines, list):
        raise ConfigError("machines", machines, f"a list; {_REDO}", source=source)
    return [_entry(m, i, source) for i, m in enumerate(machines)]


def save_calibration(cal: Calibration, path: Path | None = None) -> Path:
    """Add ``cal`` to the file, replacing the entry of the same fingerprint and keeping the
    others (other thread counts, other machines sharing the cache); a damaged file is replaced.
    Written atomically: a temporary file in the same folder, then renamed over it."""
    path = path or calibration_path()
    try:
        kept = [c for c in load_calibrations(path) if c.fingerprint != cal.fingerprint]
    except ConfigError:
        kept = []
    data = {"format": FORMAT, "machines": [c.to_dict() for c in [*kept, cal]]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """A fresh temporary path next to ``path``, removed afterwards unless it was renamed."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


# -- lookup ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A calibrated peak (``tflops``) with its ``source``, or None and a one-line ``note``."""

    tflops: float | None
    source: str


def lookup_peak(dtype: str, threads: int, path: Path | None = None) -> Found:
    """This machine's calibrated peak at ``dtype`` and ``threads``, else a note saying why there
    is none and how to get one. Never raises: a damaged file is a note."""
    path = path or calibration_path()
    try:
        cals = load_calibrations(path)
    except ConfigError as e:
        return Found(None, f"calibration ignored: {e}")
    if not cals:
        return Found(None, f"no CPU calibration: {HOW} for MFU")
    fp = fingerprint(threads)
    mine = [c for c in cals if c.fingerprint == fp]
    if not mine:
        others = f"{len(cals)} of another machine or thread count ignored"
        return Found(None, f"no calibration for {fingerprint_text(fp)} ({others}): {HOW}")
    cal = mine[-1]
    if dtype not in cal.peak_tflops:
        have = ", ".join(cal.peak_tflops)
        return Found(None, f"{cal.source} has no {dtype} peak (only {have}): MFU not reported")
    return Found(cal.peak_tflops[dtype], cal.source)
