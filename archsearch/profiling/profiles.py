"""Hardware/measurement presets (``profiles/*.yaml``): where and how a variant is measured.

A profile names the device and dtype, the batch, the warm-up and repeat counts, whether to
``torch.compile``, the device's peak TFLOP/s (for MFU) and its memory (to skip lengths that cannot
fit). On the CPU a profile without a peak uses this machine's calibrated one (:func:`device_peak`;
``archsearch doctor --calibrate``). Every field has a default, so ``Profile()`` is the CPU preset;
a YAML file overrides fields. Unknown fields, bad values and a device this machine lacks are
one-line errors naming the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from archsearch.dataconf import MAX_BATCH, MAX_SEQ_LEN, check_int, check_number, from_dict
from archsearch.errors import ConfigError
from archsearch.profiling.calibrate import lookup_peak
from archsearch.yamlio import line_of, load_yaml, resolve_shipped, shipped_dir, shipped_names

#: the shipped presets, package data (``--profile cpu`` means ``PROFILES_DIR / "cpu.yaml"``); the
#: repository's top-level ``profiles/`` is a link to this folder
PROFILES_DIR = shipped_dir("profiles")

Device = Literal["cpu", "cuda"]
DType = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str = "cpu"
    description: str = ""
    device: Device = "cpu"
    dtype: DType = "float32"
    batch_size: int = 1
    warmup: int = 2
    """untimed runs before timing (lazy init, kernel selection, torch.compile)"""
    repeats: int = 10
    """timed runs; median, IQR, min and coefficient of variation are reported"""
    compile: bool = False
    threads: int | None = None
    """CPU threads (torch.set_num_threads) while timing; null: torch's default"""
    peak_tflops: float | None = None
    """the device's dense peak at this dtype, for MFU; null: on the CPU, this machine's
    calibrated peak (``archsearch doctor --calibrate``), elsewhere MFU not reported"""
    memory_gib: float | None = None
    """device memory: lengths whose memory estimate exceeds it are recorded as out of memory
    without running; null: no limit (a real out-of-memory error is still caught)"""
    latency_max_seq_len: int | None = None
    """longest T to time; null: no limit"""
    time_budget_s: float = 30.0
    """longest predicted time for one timed call (from the previous length, scaled by its
    FLOPs); longer lengths are skipped and recorded as such"""

    def __post_init__(self) -> None:
        # bounds so a typo is one line, not an hour of timing (docs/search.md, "Spaces")
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_int("warmup", self.warmup, 0, 1000)
        check_int("repeats", self.repeats, 1, 10_000)
        if self.threads is not None:
            check_int("threads", self.threads, 1, 4096)
        if self.peak_tflops is not None:
            check_number("peak_tflops", self.peak_tflops, 0, 1e6, open_low=True)
        if self.memory_gib is not None:
            check_number("memory_gib", self.memory_gib, 0, 1 << 20, open_low=True)
        if self.latency_max_seq_len is not None:
            check_int("latency_max_seq_len", self.latency_max_seq_len, 1, MAX_SEQ_LEN)
        check_number("time_budget_s", self.time_budget_s, 0, 86_400, open_low=True)

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory_gib is None else int(self.memory_gib * 2**30)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)


def shipped_profiles() -> list[str]:
    """The names of the shipped presets (``cpu``, ``h100-bf16``, ...), sorted."""
    return shipped_names(PROFILES_DIR)


def resolve_profile_path(spec: str | Path) -> Path:
    """A path that exists wins; else a shipped preset's name (``cpu`` -> ``PROFILES_DIR/cpu.yaml``);
    else a YAML path (a missing one fails when read, naming it) or an error listing the presets."""
    return resolve_shipped(
        spec, PROFILES_DIR, field="profile", what="a profile YAML path or a shipped preset"
    )


def load_profile(spec: str | Path) -> Profile:
    """Load a profile YAML (a path or a shipped preset's name); errors name file and line."""
    path = resolve_profile_path(spec)
    data, lines = load_yaml(path)
    if data is None:
        data = {}
    try:
        prof = from_dict(Profile, data)
    except ConfigError as e:
        key = e.field.split(".")[0].split("[")[0]
        raise e.located(source=str(path), line=line_of(lines, (key,))) from None
    if "name" not in data:
        prof = prof.replace(name=path.stem)
    return prof


def check_device(profile: Profile, *, source: str | None = None) -> None:
    """Fail with one line if the profile's device is not on this machine."""
    if profile.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "device",
                "cuda",
                "cpu: this machine has no CUDA device (torch.cuda.is_available() is False; "
                f"torch {torch.__version__})",
                source=source,
            )


@dataclass(frozen=True)
class Peak:
    """The peak a profile's MFU is computed against: ``tflops`` and where it came from
    (``source``), or None and a one-line note saying why there is none (never silent)."""

    tflops: float | None
    source: str


def device_peak(profile: Profile, *, threads: int | None = None) -> Peak:
    """The profile's own ``peak_tflops``; else, on the CPU, this machine's calibrated peak at the
    profile's dtype and ``threads`` (default: the profile's, else torch's current count)."""
    if profile.peak_tflops is not None:
        return Peak(profile.peak_tflops, f"profile {profile.name}: peak_tflops")
    if profile.device != "cpu":
        return Peak(None, f"profile {profile.name} has no peak_tflops: MFU not reported")
    if threads is None:
        threads = profile.threads
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    found = lookup_peak(profile.dtype, threads)
    return Peak(found.tflops, found.source)


def mfu_record(flops: float, seconds: float, peak: Peak) -> dict[str, Any]:
    """Achieved TFLOP/s (``flops`` in ``seconds``) and, with a peak, the MFU, with the peak's
    source (or the note why there is no MFU)."""
    achieved = flops / seconds / 1e12 if seconds > 0 else None
    mfu = achieved / peak.tflops if achieved is not None and peak.tflops else None
    return {
        "achieved_tflops": achieved,
        "peak_tflops": peak.tflops,
        "peak_source": peak.source,
        "mfu": mfu,
    }
