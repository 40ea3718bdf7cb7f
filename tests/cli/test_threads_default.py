"""The command line's OpenMP default: waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE``) unless
the user chose, so a second job on the machine does not halve both; the run records it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[2] / "models" / "tiny-softmax.yaml"


@pytest.mark.parametrize(("given", "recorded"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_wait_policy_default_is_passive_and_recorded(
    tmp_path: Path, given: str | None, recorded: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    cmd = [sys.executable, "-m", "archsearch", "train", str(MODEL), "--budget-steps", "1"]
    res = subprocess.run(
        [*cmd, "--evals", "1", "--json", "-o", str(tmp_path / "r")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["env"]["omp_wait_policy"] == recorded
