"""Evaluation follows the budget: by default the held-out size comes from the fewest training
tokens of a comparison (one size for every model, so every model scores the same bytes) and the
number of evaluations from what ~8% of a run's compute affords."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.model.costs import model_cost
from archsearch.profiling.profiles import load_profile
from archsearch.quality.evaluate import EVAL_SHARE, auto_eval_tokens
from archsearch.search.space import load_space, sample_configs
from archsearch.search.study import settings_from

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _model(tmp_path: Path, name: str, d_model: int) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(
        f"name: {name}\nd_model: {d_model}\nvocab_size: 256\nmax_seq_len: 64\n"
        "layers:\n  - {repeat: 1, mixer: {kind: softmax, n_heads: 2}}\n"
    )
    return p


def _eval_forward_tokens(info: dict) -> int:
    return info["eval_windows"] * info["seq_len"]


def test_train_sizes_its_evaluation_from_its_token_budget(tmp_path: Path) -> None:
    model = _model(tmp_path, "m", 16)
    args = ["train", str(model), "--budget-tokens", "40k", "-b", "8", "--out", str(tmp_path / "o")]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    info = res["task_info"]
    # 40,000 tokens / 16 = 2,500: the power of two below, at least 2048
    assert info["eval_scored_bytes"] == 2048 == auto_eval_tokens(40_000)
    evals = len(res["curve"])  # step 0 and the evenly spaced points
    spent = evals * _eval_forward_tokens(info)
    assert spent <= EVAL_SHARE * 3 * res["tokens_seen"]
    assert evals >= 2 and res["eval_seconds"] > 0
    assert res["config"]["evals"] is None  # automatic, recorded as such


def test_an_explicit_size_and_count_are_kept(tmp_path: Path) -> None:
    model = _model(tmp_path, "m", 16)
    args = ["train", str(model), "--budget-tokens", "4k", "-b", "8", "--evals", "3"]
    args += ["-O", "eval_tokens=640", "--out", str(tmp_path / "o"), "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert len(res["curve"]) == 4  # step 0 and 3
    assert res["task_info"]["eval_scored_bytes"] == 640  # 20 windows of 32


def test_compare_at_equal_compute_gives_every_model_the_same_held_out_bytes(
    tmp_path: Path,
) -> None:
    small, wide = _model(tmp_path, "small", 16), _model(tmp_path, "wide", 64)
    out = tmp_path / "cmp"
    args = ["compare", str(small), str(wide), "--seeds", "1", "--budget-flops", "2e10"]
    r = runner.invoke(app, [*args, "-b", "8", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    runs = {row["model"]: row for row in _csv(out / "runs.csv")}
    # the wide model buys fewer tokens; the held-out size follows it and is shared
    fewest = min(int(row["tokens"]) for row in runs.values())
    assert runs["wide"]["tokens"] == str(fewest)
    assert runs["small"]["eval_scored_bytes"] == runs["wide"]["eval_scored_bytes"]
    assert float(runs["wide"]["eval_scored_bytes"]) == auto_eval_tokens(fewest)


def test_a_search_at_equal_compute_sizes_its_held_out_set_once() -> None:
    space = load_space(ROOT / "search_spaces" / "quickstart.yaml")
    settings = settings_from(space, profile=load_profile("cpu"))
    # the costliest of the 64 seeded draws sets the size for every trial of the study
    costliest = max(model_cost(c, space.seq_len).training_exact for c in sample_configs(space))
    tokens = round(settings.train.budget_flops / costliest) * space.seq_len
    assert settings.task_options["eval_tokens"] == auto_eval_tokens(tokens)
    again = settings_from(space, profile=load_profile("cpu"))
    assert again.task_options == settings.task_options  # a resumed study sees the same


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))
