"""Hardware/measurement presets (``profiles/*.yaml``): where and how a variant is measured.

A profile names the device and dtype, the batch, the warm-up and repeat counts, whether to
``torch.compile``, the device's peak TFLOP/s (for MFU) and its memory (to skip lengths that cannot
fit). Every field has a default, so ``Profile()`` is the CPU preset; a YAML file overrides fields.
Unknown fields, bad values and a device this machine lacks are one-line errors naming the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from archsearch.dataconf import from_dict
from archsearch.errors import ConfigError, require
from archsearch.yamlio import line_of, load_yaml

#: the shipped presets: ``--profile cpu`` means ``profiles/cpu.yaml`` of the repository
PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"

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
    """the device's dense peak at this dtype, for MFU; null: MFU not reported"""
    memory_gib: float | None = None
    """device memory: lengths whose memory estimate exceeds it are recorded as out of memory
    without running; null: no limit (a real out-of-memory error is still caught)"""
    latency_max_seq_len: int | None = None
    """longest T to time; null: no limit"""
    time_budget_s: float = 30.0
    """longest predicted time for one timed call (from the previous length, scaled by its
    FLOPs); longer lengths are skipped and recorded as such"""

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        require(self.warmup >= 0, "warmup", self.warmup, "an integer >= 0")
        require(self.repeats >= 1, "repeats", self.repeats, "an integer >= 1")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, ">= 1")
        for f in ("peak_tflops", "memory_gib"):
            v = getattr(self, f)
            require(v is None or v > 0, f, v, "a positive number or null")
        require(
            self.latency_max_seq_len is None or self.latency_max_seq_len >= 1,
            "latency_max_seq_len",
            self.latency_max_seq_len,
            "an integer >= 1 or null",
        )
        require(self.time_budget_s > 0, "time_budget_s", self.time_budget_s, "a positive number")

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


def resolve_profile_path(spec: str | Path) -> Path:
    """A path, or the name of a shipped preset (``cpu`` -> ``profiles/cpu.yaml``)."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in str(spec):
        return p
    shipped = PROFILES_DIR / f"{spec}.yaml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(x.stem for x in PROFILES_DIR.glob("*.yaml")))
    raise ConfigError("profile", str(spec), f"a profile YAML path or a shipped preset: {names}")


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
