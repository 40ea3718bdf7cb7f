"""``archsearch train`` as a user meets it: every task end to end on tiny shapes, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.quality.cifar import write_cifar_batch

runner = CliRunner()

ENGLISH = "The quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun. " * 60


def _model(
    tmp_path: Path, name: str = "tiny", vocab: int = 256, T: int = 32, extra: str = ""
) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(
        f"name: {name}\nd_model: 16\nvocab_size: {vocab}\nmax_seq_len: {T}\npos_encoding: rope\n"
        f"{extra}layers:\n  - {{repeat: 2, mixer: {{kind: softmax, n_heads: 2}}}}\n"
    )
    return p


def _text(tmp_path: Path, body: str = ENGLISH) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text(body)
    return p


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lm_run_writes_result_curve_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(_model(tmp_path)), "--data", str(_text(tmp_path)), "--budget-steps", "6"]
    args += ["--batch-size", "4", "--evals", "2", "--out", str(out), "--json"]
    res = _json(runner.invoke(app, args))
    assert res["status"] == "completed" and res["steps"] == 6
    assert res["task_info"]["corpus"]["name"] == "text"
    assert res["task_info"]["eval_stride"] == 16  # T/2 for a model that scores every position
    assert [p["step"] for p in res["curve"]] == [0, 3, 6]
    bpb = res["final"]["bits_per_byte"]
    assert bpb == pytest.approx(res["final"]["loss"] / np.log(2))
    assert 0 < bpb < 8.5 and res["baseline"]["unigram_bits_per_byte"] > 2
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["final"] == res["final"] and on_disk["command"].startswith("archsearch ")
    rows = (out / "curve.csv").read_text().splitlines()
    assert rows[0].startswith(
        "step,tokens,train_seconds,lr,train_loss,eval_loss,eval_bits_per_byte"
    )
    assert len(rows) == 4
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_corpus_needs_no_data_and_existing_results_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(_model(tmp_path)), "--budget-steps", "2", "--batch-size", "2"]
    args += ["--evals", "1", "--out", str(out), "--json", "-O", "eval_tokens=256"]
    res = _json(runner.invoke(app, args))
    assert res["task_info"]["corpus"]["name"] == "default"
    assert res["task_info"]["eval_scored_bytes"] == 256
    before = (out / "result.json").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "pass --force" in again.stderr
    assert (out / "result.json").read_text() == before


def test_mqar_and_scifar_end_to_end(tmp_path: Path) -> None:
    m = _model(tmp_path, "mq", vocab=32, T=24)
    args = ["train", str(m), "--task", "mqar", "-O", "vocab_size=32", "-O", "num_pairs=3"]
    args += ["-O", "eval_examples=16", "--budget-steps", "3", "--batch-size", "4", "--evals", "1"]
    res = _json(runner.invoke(app, [*args, "--out", str(tmp_path / "mq"), "--json"]))
    assert res["metric"] == "accuracy" and 0 <= res["final"]["accuracy"] <= 1
    assert res["final"]["queries"] == 16 * 3
    assert res["baseline"]["chance_accuracy"] == pytest.approx(1 / 16)

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    write_cifar_batch(
        folder / "data_batch_1",
        rng.integers(0, 256, (20, 3072), dtype=np.uint8),
        list(range(10)) * 2,
    )
    write_cifar_batch(
        folder / "test_batch", rng.integers(0, 256, (4, 3072), dtype=np.uint8), [0, 1, 2, 3]
    )
    img = _model(tmp_path, "img", T=1024)
    args = ["train", str(img), "--task", "scifar", "--data", str(folder), "--budget-steps", "2"]
    args += ["--batch-size", "2", "--evals", "1", "--out", str(tmp_path / "sc"), "--json"]
    res = _json(runner.invoke(app, args))
    assert res["task_info"]["sizes"] == {"train": 18, "valid": 2, "test": 4}
    assert res["final"]["images"] == 2 and res["tokens_seen"] == 2 * 2 * 1024


def _error(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.output
    return r.stderr


def test_bad_input_is_one_line_with_exit_2(tmp_path: Path) -> None:
    m = _model(tmp_path)
    base = ["train", str(m), "--budget-steps", "1", "--out", str(tmp_path / "o")]
    missing = tmp_path / "nope.txt"
    assert str(missing) in _error([*base, "--data", str(missing)])
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01" * 100)
    assert str(binary) in _error([*base, "--data", str(binary)])
    small = _text(tmp_path, "too short for a window of thirty-two bytes")
    assert "seq_len" in _error([*base, "--data", str(small)])
    assert "vocab_size: got 64; allowed: >= 256" in _error(
        ["train", str(_model(tmp_path, "v64", vocab=64)), "--budget-steps", "1"]
    )
    assert "task: got 'lmm'" in _error([*base, "--task", "lmm"])
    assert "task.num_pair" in _error([*base, "--task", "mqar", "-O", "num_pair=3"])
    assert "--task-opt" in _error([*base, "-O", "num_pairs"])
    assert "cifar-10-batches-py" in _error([*base, "--task", "scifar"])
    assert "--budget-tokens" in _error([*base, "--budget-tokens", "lots"])
    assert "budget:" in _error(["train", str(m), "--out", str(tmp_path / "o")])
    assert "lr: got -1.0" in _error([*base, "--lr", "-1"])


def test_perceiver_ar_scores_only_its_latents(tmp_path: Path) -> None:
    fam = "family: {kind: perceiver_ar, n_latents: 8}\n"
    p = _model(tmp_path, "par", T=32, extra=fam)
    data = str(_text(tmp_path))
    base = ["train", str(p), "--data", data, "--budget-steps", "1", "--evals", "1"]
    # the default stride is its latent count; a larger one cannot be scored fairly
    res = _json(runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--json"]))
    assert res["task_info"]["eval_stride"] == 8
    assert "eval_stride: got 16; allowed: 1..8" in _error([*base, "--eval-stride", "16"])
    # mqar queries fill the last 24 - 2*3 = 18 positions; 8 latents cannot score them
    mq = _model(tmp_path, "parmq", vocab=32, T=24, extra=fam)
    assert "scores only 8" in _error(
        [
            "train",
            str(mq),
            "--task",
            "mqar",
            "-O",
            "vocab_size=32",
            "-O",
            "num_pairs=3",
            "--budget-steps",
            "1",
        ]
    )


def _sigint_as_at_a_terminal() -> None:
    """The child's SIGINT as a terminal's Ctrl-C finds it: default disposition, not blocked (a
    test run started as a background job, or from a thread that blocks it, passes on either)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_writes_the_partial_curve_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "archsearch", "train", str(_model(tmp_path)), "--data"]
    cmd += [str(_text(tmp_path)), "--budget-steps", "1000000", "--evals", "100000"]
    cmd += ["--batch-size", "2", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_sigint_as_at_a_terminal,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:  # wait until training has started (step 0 evaluated)
        line = proc.stderr.readline()
        seen += line
        if "held-out" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + err
    assert "interrupted: the partial curve is in" in err
    res = json.loads((out / "result.json").read_text())
    assert res["status"] == "interrupted" and res["steps"] >= 1
    assert res["curve"][0]["step"] == 0 and (out / "curve.png").exists()
