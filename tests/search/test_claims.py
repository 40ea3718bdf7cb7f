"""``archsearch claims``: verdicts from intervals, the spec's one-line errors, a tiny study end to
end (resume, redraw; two workers), and the committed spec's experiments all buildable."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.search.claims import load_spec, run_claims, write_report
from archsearch.search.claims.runner import comparison
from archsearch.search.claims.spec import Row
from archsearch.search.claims.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    ExperimentRuns,
    best_of,
    judge_better,
    judge_close,
    judge_row,
    judge_solves,
    rollup,
)
from archsearch.search.stats import Summary

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "reports" / "claims" / "claims.yaml"
TEXT = "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun. " * 60


def S(low: float, high: float, n: int = 3) -> Summary:
    return Summary(n, (low + high) / 2, 0.1, low, high)


@pytest.mark.parametrize(
    ("interval", "lower_is_better", "verdict"),
    [
        ((-0.3, -0.1), True, REPRODUCED),
        ((0.1, 0.3), True, NOT_REPRODUCED),
        ((-0.1, 0.1), True, INCONCLUSIVE),
        ((0.1, 0.3), False, REPRODUCED),  # accuracy: a positive difference is better
        ((-0.3, -0.1), False, NOT_REPRODUCED),
    ],
)
def test_better_follows_the_interval(interval, lower_is_better, verdict) -> None:
    assert judge_better(S(*interval), lower_is_better)[0] == verdict


def test_one_seed_is_never_a_verdict() -> None:
    one = Summary(1, -5.0, math.nan, -5.0, -5.0)
    assert judge_better(one, True)[0] == INCONCLUSIVE
    assert judge_close(one, True, 0.04)[0] == INCONCLUSIVE
    assert judge_solves(Summary(1, 1.0, math.nan, 1.0, 1.0), 0.9)[0] == INCONCLUSIVE
    assert judge_better(None, True)[0] == INCONCLUSIVE


@pytest.mark.parametrize(
    ("interval", "verdict"),
    [
        ((-0.2, 0.04), REPRODUCED),  # at most 0.04 worse: within a 0.05 margin
        ((0.06, 0.2), NOT_REPRODUCED),  # at least 0.06 worse
        ((0.0, 0.1), INCONCLUSIVE),  # the margin is inside
        ((-0.5, -0.3), REPRODUCED),  # clearly better is also "close"
    ],
)
def test_close_is_a_one_sided_margin(interval, verdict) -> None:
    assert judge_close(S(*interval), True, 0.05)[0] == verdict


def test_solves_against_the_threshold() -> None:
    assert judge_solves(S(0.92, 0.99), 0.9)[0] == REPRODUCED
    assert judge_solves(S(0.2, 0.5), 0.9)[0] == NOT_REPRODUCED
    assert judge_solves(S(0.8, 0.95), 0.9)[0] == INCONCLUSIVE


def test_rollup_rules() -> None:
    r, n, i = REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE
    assert rollup("all", [r, r]) == r
    assert rollup("all", [r, i]) == i
    assert rollup("all", [r, i, n]) == n
    assert rollup("any", [n, i, r]) == r
    assert rollup("any", [n, i]) == i
    assert rollup("any", [n, n]) == n
    assert rollup("all", []) == i


def test_rows_read_paired_seeds_and_selections() -> None:
    runs = ExperimentRuns(
        "bits_per_byte",
        True,
        {"a": {0: 2.0, 1: 2.1, 2: 2.05}, "b": {0: 2.5, 1: 2.6, 2: 2.55}, "c": {0: 3.0}},
    )
    assert best_of(("b", "a", "c"), runs.values, True) == "a"
    assert best_of(("b", "c"), {"b": {0: 0.3}, "c": {0: 0.9}}, False) == "c"
    row = Row("better", "lm", "best", "b")
    res = judge_row(row, runs, {"best": "a"}, None, margin=0.04, threshold=0.9)
    assert res.model == "a" and res.verdict == REPRODUCED
    assert res.value is not None and res.value.mean == pytest.approx(-0.5)
    # paired over the seeds both have: "c" shares only seed 0 with "a" -> no interval
    res = judge_row(Row("better", "lm", "c", "a"), runs, {}, None, margin=0.04, threshold=0.9)
    assert res.verdict == INCONCLUSIVE and res.value is not None and res.value.n == 1

    def cost(exp: str, model: str, what: str, seq_len: int | None) -> float:
        return {"a": 1.0, "b": 2.0}[model]

    res = judge_row(
        Row("cheaper", "lm", "a", "b", cost="flops_train"), runs, {}, cost, margin=0, threshold=0
    )
    assert res.verdict == REPRODUCED and res.costs == (1.0, 2.0)


# ---- a tiny study ----

MODEL = (
    "name: {name}\nd_model: 16\nvocab_size: 256\nmax_seq_len: 32\npos_encoding: rope\n"
    "layers:\n  - {{repeat: 1, mixer: {mixer}}}\n"
)
MIXERS = {
    "att": "{kind: softmax, n_heads: 2}",
    "hsm": "{kind: hsm, mixing: ab}",
    "win": "{kind: sliding_window, n_heads: 2, window: 4}",
}
TINY = """\
scales:
  cpu:
    profile: cpu
    seeds: 2
    models: models
    quick: {{seeds: 1, budget: 0.5}}
    experiments:
      lm:
        task: lm
        options: {{data: {data}, eval_tokens: 256}}
        seq_len: 32
        budget_flops: 1.5e+8
        batch_size: 4
        lr: 3.0e-3
        evals: 1
        models: [att, hsm, win]
      recall:
        task: mqar
        options: {{vocab_size: 16, num_pairs: 2, eval_examples: 32}}
        seq_len: 16
        budget_flops: 5.0e+7
        batch_size: 8
        lr: 3.0e-3
        evals: 1
        models: [att, hsm]
claims:
  - id: 1
    title: HSM is close to attention
    source: a test
    quote: close
    rule: any
    rows:
      - {{test: close, experiment: lm, model: hsm, baseline: att}}
  - id: two
    title: the best local model beats attention, cheaper, and recalls
    source: a test
    quote: better
    select:
      - {{name: local, experiment: lm, among: [hsm, win]}}
    rows:
      - {{test: better, experiment: lm, model: local, baseline: att}}
      - {{test: cheaper, cost: decode_state, experiment: lm, model: local, baseline: att,
         seq_len: 64}}
      - {{test: solves, experiment: recall, model: att, counts: false}}
"""


def _tiny(tmp_path: Path, text: str | None = None) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    for name, mixer in MIXERS.items():
        (tmp_path / "models" / f"{name}.yaml").write_text(MODEL.format(name=name, mixer=mixer))
    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    spec = tmp_path / "claims.yaml"
    spec.write_text(text or TINY.format(data=data))
    return spec


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_two_workers_train_every_run(tmp_path: Path) -> None:
    spec = load_spec(_tiny(tmp_path))
    res = run_claims(spec, "cpu", tmp_path / "two", quick=True, workers=2, threads=1)
    assert res["runs_trained"] == 5 and res["runs_left"] == 0
    rows = _rows(tmp_path / "two" / "results.csv")
    assert sorted((r["experiment"], r["model"]) for r in rows) == [
        ("lm", "att"), ("lm", "hsm"), ("lm", "win"), ("recall", "att"), ("recall", "hsm")
    ]  # fmt: skip


def test_tiny_study_end_to_end_resumes_and_redraws(tmp_path: Path) -> None:
    spec = load_spec(_tiny(tmp_path))
    out = tmp_path / "report"
    first = run_claims(spec, "cpu", out, workers=1, threads=1, command="archsearch claims")
    assert first["runs_trained"] == (3 + 2) * 2 and first["runs_left"] == 0
    rows = _rows(out / "results.csv")
    assert len(rows) == 10 and {r["status"] for r in rows} == {"completed"}
    assert {(r["experiment"], r["metric"]) for r in rows} == {
        ("lm", "bits_per_byte"),
        ("recall", "accuracy"),
    }
    curves = _rows(out / "cpu" / "curves.csv")
    assert {r["point"] for r in curves} == {"0", "1"}  # step 0 and the one evaluation
    readme = (out / "README.md").read_text()
    assert "| claim | CPU verdict |" in readme
    assert "## Claim 1: HSM is close to attention" in readme
    assert "## Claim two:" in readme and "`local` = **" in readme
    assert "(shown, not counted)" in readme and "decode state (numbers) at T = 64" in readme
    assert (out / "cpu" / "claim-1.png").stat().st_size > 10_000
    assert (out / "cpu" / "claim-two.png").exists()
    # the same call again trains nothing; the redraw from the records is the same page
    again = run_claims(spec, "cpu", out, workers=1)
    assert again["runs_trained"] == 0 and again["runs_before"] == 10
    before = (out / "README.md").read_text()
    write_report(spec, out)
    assert (out / "README.md").read_text() == before
    assert "over 1 call(s)" in before  # the call that trained nothing does not count


def test_quick_uses_its_own_studies_and_budget(tmp_path: Path) -> None:
    spec = load_spec(_tiny(tmp_path))
    out = tmp_path / "quick"
    res = run_claims(spec, "cpu", out, quick=True)
    assert res["runs_trained"] == 5  # one seed
    rows = _rows(out / "results.csv")
    assert {float(r["budget_flops"]) for r in rows if r["experiment"] == "lm"} == {0.75e8}
    assert "--quick" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("rule: any", "rule: most", "claims[0].rule"),
        ("test: close", "test: worse", "claims[0].rows[0].test"),
        ("model: hsm, baseline: att}", "model: hsm}", "claims[0].rows[0].baseline"),
        ("model: hsm, baseline: att}", "model: nope, baseline: att}", "claims[0].rows[0].model"),
        ("among: [hsm, win]", "among: [hsm, gone]", "claims[1].rows[0].model"),
        ("experiment: recall, model", "experiment: vision, model", "claims[1].rows[2].experiment"),
        ("models: [att, hsm]\n", "models: [att, missing]\n", "experiments.recall.models[1]"),
        ("seeds: 2", "seeds: 0", "scales.cpu.seeds"),
        ("budget_flops: 1.5e+8", "budget_flops: -1", "experiments.lm.budget_flops"),
        ("budget: 0.5}", "budget: 2}", "scales.cpu.quick.budget"),
        ("models: models\n", "models: elsewhere\n", "scales.cpu.models"),
        ("    source: a test\n    quote: close", "    quote: close", "claims[0].source"),
        ("claims:\n  - id: 1", "claimz:\n  - id: 1", "claimz"),
        ("cost: decode_state", "cost: joules", "claims[1].rows[1].cost"),
    ],
)
def test_spec_errors_name_file_field_and_value(tmp_path: Path, old: str, new: str, field) -> None:
    text = TINY.format(data=tmp_path / "text.txt")
    assert old in text
    path = _tiny(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as e:
        load_spec(path)
    msg = str(e.value)
    assert str(path) in msg and field in msg and "allowed" in msg and "\n" not in msg


def test_cli_bad_spec_is_one_line_exit_2(tmp_path: Path) -> None:
    text = TINY.format(data=tmp_path / "text.txt").replace("rule: any", "rule: most")
    path = _tiny(tmp_path, text)
    res = CliRunner().invoke(app, ["claims", "--spec", str(path), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "claims[0].rule" in res.output


def test_a_failing_budget_is_caught_before_anything_trains(tmp_path: Path) -> None:
    text = TINY.format(data=tmp_path / "text.txt").replace("1.5e+8", "1.0e+3")
    spec = load_spec(_tiny(tmp_path, text))
    with pytest.raises(ConfigError, match="experiments.lm.budget_flops"):
        run_claims(spec, "cpu", tmp_path / "o")
    assert not (tmp_path / "o" / "results.csv").exists()


@pytest.mark.parametrize("scale", ["cpu", "gpu"], ids=["scale-cpu", "scale-gpu"])
def test_committed_spec_builds_every_experiment(scale: str) -> None:
    """Every model of the committed report builds at its window and fits its budget (the GPU
    scale is checked with the CPU profile: nothing trains)."""
    spec = load_spec(SPEC, profile="cpu")
    s = spec.scales[scale]
    for exp in s.experiments.values():
        comp = comparison(s, exp, quick=False)
        assert [m.name for m in comp.models] == list(exp.models)
        assert comp.task.seq_len == exp.seq_len
    assert {c.id for c in spec.claims} == {"1", "2", "3", "4", "5", "6"}


@pytest.mark.slow
def test_quick_claims_cli_on_the_committed_spec(tmp_path: Path) -> None:
    """The smoke check the README promises: ``archsearch claims --quick`` (under 15 minutes on
    a 2-core CPU)."""
    out = tmp_path / "quick"
    res = CliRunner().invoke(
        app, ["claims", "--spec", str(SPEC), "--quick", "--workers", "2", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    readme = (out / "README.md").read_text()
    for i in range(1, 7):
        assert f"## Claim {i}:" in readme
    assert len(_rows(out / "results.csv")) == 18 + 4 + 3
