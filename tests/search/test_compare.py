"""``archsearch compare``: models over seeds end to end, resume, the statistics, bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.search.stats import (
    distinguishable,
    paired_difference,
    summarise,
    t_quantile_975,
)

runner = CliRunner()
TEXT = "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun. " * 60


def _model(tmp_path: Path, name: str, d_model: int = 16, extra: str = "") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(
        f"name: {name}\nd_model: {d_model}\nvocab_size: 256\nmax_seq_len: 32\n"
        f"pos_encoding: {'learned' if extra else 'rope'}\n"
        "layers:\n  - {repeat: 1, mixer: {kind: softmax, n_heads: 2}}\n"
    )
    return p


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_t_quantiles_and_intervals() -> None:
    for df, t in ((1, 12.7062), (2, 4.3027), (9, 2.2622), (30, 2.0423), (40, 2.0211)):
        assert t_quantile_975(df) == pytest.approx(t, abs=2e-4)
    for df, t in ((60, 2.0003), (120, 1.9799), (10_000, 1.9602)):
        assert t_quantile_975(df) == pytest.approx(t, abs=2e-4)
    s = summarise([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.std == 1.0
    assert s.half_width == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)
    one = summarise([5.0])
    assert one.n == 1 and math.isnan(one.std) and one.low == one.high == 5.0
    d = paired_difference({0: 2.0, 1: 3.0, 2: 4.5}, {0: 1.0, 1: 2.0, 2: 3.0, 3: 9.0})
    assert d is not None and d.n == 3 and d.mean == pytest.approx(3.5 / 3)  # 1, 1, 1.5
    a, b, c = summarise([1.0, 1.1, 0.9]), summarise([5.0, 5.1, 4.9]), summarise([5.05, 5.0, 5.1])
    assert distinguishable([a, b]) == [True, True]
    assert distinguishable([a, b, c]) == [True, False, False]


def test_two_models_three_seeds_end_to_end_then_resume(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    a, b = _model(tmp_path, "small", 16), _model(tmp_path, "wide", 32)
    out = tmp_path / "cmp"
    args = ["compare", str(a), str(b), "--seeds", "3", "--budget-flops", "3e8", "--data"]
    args += [str(corpus), "-O", "eval_tokens=512", "-b", "4", "--evals", "1", "--out", str(out)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["runs"] == 6 and not res["interrupted"]
    runs = _rows(out / "runs.csv")
    assert [(x["model"], x["seed"]) for x in runs] == [
        (m, str(s)) for m in ("small", "wide") for s in range(3)
    ]
    for x in runs:  # equal compute: every run within 2% of the budget
        assert abs(float(x["flops_spent"]) - 3e8) / 3e8 < 0.02
    assert len({x["bits_per_byte"] for x in runs if x["model"] == "small"}) == 3  # seeds differ
    small, wide = _rows(out / "compare.csv")
    assert small["n"] == wide["n"] == "3" and small["diff_vs_first"] == ""
    assert float(wide["ci95_low"]) <= float(wide["mean"]) <= float(wide["ci95_high"])
    assert float(wide["flops_train_per_window"]) > float(small["flops_train_per_window"])
    assert float(wide["diff_ci95_low"]) <= float(wide["diff_vs_first"])
    assert (out / "compare.png").stat().st_size > 0
    md = (out / "compare.md").read_text()
    assert "at equal compute (3e+08 FLOP per run)" in md and "paired difference to small" in md

    # the same command again trains nothing; one more seed trains only that seed
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["runs"] == 6
    assert _rows(out / "runs.csv") == runs
    more = runner.invoke(app, [*[x if x != "3" else "4" for x in args], "--json"])
    assert json.loads(more.stdout)["runs"] == 8
    assert _rows(out / "runs.csv")[:3] == runs[:3]


def _error(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def test_bad_input_is_one_line_exit_2_before_training(tmp_path: Path) -> None:
    a = str(_model(tmp_path, "a"))
    out = ["--out", str(tmp_path / "o")]
    assert "--seeds: got 0" in _error(["compare", a, "--seeds", "0", *out])
    assert "not both" in _error(["compare", a, "--budget-flops", "1e9", "--budget-tokens", "1k"])
    assert "at least one optimizer step of a" in _error(["compare", a, "--budget-flops", "1e5"])
    assert "--budget-flops" in _error(["compare", a, "--budget-flops", "lots"])
    learned = str(_model(tmp_path, "pos", extra="learned"))
    err = _error(["compare", a, learned, "-T", "64", *out])
    assert "pos.yaml" in err and "seq_len: got 64" in err
    assert not (tmp_path / "o").exists()  # nothing written, nothing trained
    # the train and search commands refuse the same
    assert "not both" in _error(["train", a, "--budget-flops", "1e9", "--budget-steps", "3"])
    assert "at least one optimizer step" in _error(["train", a, "--budget-flops", "1e5"])
