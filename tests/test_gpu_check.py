"""``benchmarks/gpu_check.sh`` as far as a CPU can test it: its arguments, its plan, and its
clean skip without CUDA (the GPU run itself is done whenever a GPU is at hand)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_help_and_bad_arguments() -> None:
    assert _run("--help").returncode == 0 and "pytest -m gpu" in _run("--help").stdout
    for args, needle in [
        (["--bogus"], "got '--bogus'"),
        (["--claims-minutes", "9"], "--claims-minutes: got '9'"),
        (["--profile"], "--profile: missing"),
    ]:
        res = _run(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and needle in res.stderr


def test_the_plan_names_every_step() -> None:
    plan = _run("--dry-run", "--profile", "h100-bf16").stdout.splitlines()
    assert [line.split(":")[1].split()[-1] for line in plan] == ["pytest", "profile", "throughput"]
    assert "-p h100-bf16 -T 1k,4k,16k" in plan[1]
    assert "--lengths 4k,8k,16k,32k --dtype bfloat16" in plan[2]
    claims = _run("--dry-run", "--claims", "--claims-minutes", "3").stdout.splitlines()
    assert len(claims) == 4 and "timeout -s INT 180" in claims[3] and "--scale gpu" in claims[3]


def test_without_cuda_it_skips_and_writes_nothing(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would run")
    res = _run("--out", str(tmp_path / "gpu"))
    assert res.returncode == 0 and "skipped: no CUDA device" in res.stdout
    assert not (tmp_path / "gpu").exists()
