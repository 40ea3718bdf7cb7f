"""The search at equal compute: a FLOPs budget per trial, rungs as fractions of it, the study's
budget mode, the report's labels, and the front re-trained over extra seeds."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from _spaces import tiny_space
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.profiling.profiles import Profile
from archsearch.search.space import parse_space
from archsearch.search.storage import open_storage, storage_url
from archsearch.search.study import load_settings, open_study, settings_from

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()

SPACE = tiny_space(
    "tinyflops",
    heads="[2]",
    hsm=False,
    params_max=None,
    train="{budget_flops: 3e8, batch_size: 4, evals: 2, halving: {eta: 2, rungs: 2}}",
)


def test_flops_mode_is_part_of_the_study_identity(tmp_path: Path) -> None:
    space = parse_space(SPACE, source="s.yaml")
    s = settings_from(space, profile=Profile())
    assert s.train.budget_flops == 3e8 and s.train.budget_tokens is None
    assert s.record()["train"]["budget_mode"] == "flops"
    tokens = settings_from(space, profile=Profile(), budget_tokens=3072)
    assert tokens.train.budget_flops is None and tokens.record()["train"]["budget_mode"] == "tokens"
    storage = open_storage(storage_url(tmp_path / "db.sqlite"))
    open_study(s, storage, "x")
    with pytest.raises(ConfigError, match="train.budget_flops"):
        open_study(tokens, storage, "x")
    with pytest.raises(ConfigError, match="not both"):
        settings_from(space, profile=Profile(), budget_tokens=3072, budget_flops=1e9)
    both = SPACE.replace("budget_flops: 3e8,", "budget_flops: 3e8, budget_tokens: 100,")
    with pytest.raises(ConfigError, match="s.yaml.*train.budget_flops.*not both"):
        settings_from(parse_space(both, source="s.yaml"), profile=Profile())


def test_search_at_equal_compute_with_front_seeds(tmp_path: Path) -> None:
    space = tmp_path / "s.yaml"
    space.write_text(SPACE)
    out = tmp_path / "run"
    args = ["search", str(space), "--trials", "4", "--out", str(out), "--front-seeds", "1"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    study = optuna.load_study(study_name="tinyflops", storage=storage_url(out / "study.db"))
    assert load_settings(study)["train"]["budget_mode"] == "flops"
    for t in study.get_trials():
        if t.user_attrs.get("outcome") == "complete" and "duplicate_of" not in t.user_attrs:
            assert abs(t.user_attrs["trained_flops"] - 3e8) / 3e8 < 0.02
            rungs = t.user_attrs["fidelity"]
            assert abs(rungs[0]["flops"] - 1.5e8) / 1.5e8 < 0.1  # rung 0 at half the FLOPs
    assert res["front_seed_runs"] >= 1
    md = (out / "report" / "report.md").read_text()
    assert "## Pareto front at equal compute (300 MFLOP per trial)" in md
    assert "every trial spent 300 MFLOP of training" in md and "## How to read this" in md
    assert "## The front over seeds at equal compute" in md and "distinguishable" in md
    seeds = (out / "report" / "seeds.csv").read_text().splitlines()
    assert seeds[0].startswith("number,seed,bits_per_byte") and len(seeds) >= 3
    # resuming trains no more seeds
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["front_seed_runs"] == 0


def test_a_trial_below_one_step_of_flops_is_invalid(tmp_path: Path) -> None:
    space = tmp_path / "s.yaml"
    space.write_text(SPACE.replace("budget_flops: 3e8", "budget_flops: 1.2e7"))
    out = tmp_path / "run"
    r = runner.invoke(app, ["search", str(space), "-n", "3", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name="tinyflops", storage=storage_url(out / "study.db"))
    reasons = [t.user_attrs.get("reason", "") for t in study.get_trials()]
    assert any("at least one optimizer step" in x for x in reasons), reasons
