"""A search whose stderr is not a terminal (a log file, a pipe, CI) prints its progress as plain
lines while it runs, not a live table that appears only at the end."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tiny_space() -> str:
    spec = importlib.util.spec_from_file_location("_spaces", ROOT / "tests/search/_spaces.py")
    spaces = importlib.util.module_from_spec(spec)  # the search tests' one tiny space
    spec.loader.exec_module(spaces)
    return spaces.tiny_space()


def test_search_into_a_pipe_prints_a_line_per_trial_event(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(_tiny_space())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    cmd = [sys.executable, "-m", "archsearch", "search", str(space), "-n", "2"]
    proc = subprocess.Popen(
        [*cmd, "-o", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stderr.readline()  # arrives before any trial ends: nothing is held back
    assert first.startswith("study tiny: 2 trials, objectives bits_per_byte, flops_fwd")
    _, rest = proc.communicate(timeout=300)
    err = first + rest
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert "trial 0 (" in err and " started" in err
    assert any(line.startswith("trial ") and "% of the budget, loss" in line for line in lines)
    evals = [line for line in lines if ": held-out bits_per_byte " in line]
    assert len(evals) >= 3 and all(line.endswith("% of the budget") for line in evals)
    ends = [line for line in lines if line.startswith(("trial 0 (", "trial 1 (")) and "; " in line]
    assert len(ends) == 2 and all("bits_per_byte" in line for line in ends)
    assert lines[-1].startswith("study tiny: ") and "on the front" in lines[-1]
    assert "\x1b[" not in err and "━" not in err  # no live-display escapes or bars


def test_scale_into_a_pipe_prints_a_line_per_point(tmp_path: Path) -> None:
    model = ROOT / "models" / "tiny-softmax.yaml"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "archsearch", "scale", str(model), "-L", "128,256"]
    res = subprocess.run(
        [*cmd, "--metrics", "flops", "-o", str(tmp_path / "sc")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].startswith("tiny-softmax T=128: forward ") and "MFLOP" in lines[0]
    assert lines[1].startswith("tiny-softmax T=256: forward ")


def test_compare_into_a_pipe_prints_a_line_per_run_and_per_evaluation(tmp_path: Path) -> None:
    model = ROOT / "models" / "tiny-softmax.yaml"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "archsearch", "compare", str(model), "--seeds", "2"]
    cmd += ["--budget-tokens", "4k", "--evals", "2", "-O", "eval_tokens=256"]
    res = subprocess.run(
        [*cmd, "-b", "4", "-o", str(tmp_path / "cmp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0] == "run 1/2: tiny-softmax seed 0 started"
    evals = [line for line in lines if line.startswith("  tiny-softmax seed ")]
    assert len(evals) == 6  # step 0 and two more, per seed
    assert evals[0].startswith("  tiny-softmax seed 0: step 0, 0 tokens, 0% of the budget, ")
    assert all(", held-out bits_per_byte " in line for line in evals)
    assert "run 2/2: tiny-softmax seed 1 completed: bits_per_byte " in res.stderr
    assert "\x1b[" not in res.stderr and "━" not in res.stderr
