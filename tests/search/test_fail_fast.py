"""What can be checked before the first trial is: a budget that trains no window or no step is
one line and exit 2, before any study exists; a study that ends with no result exits 1 and says
why once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from _spaces import tiny_space
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.search.results import common_failure


def _space(tmp_path: Path, **kw) -> Path:
    p = tmp_path / "space.yaml"
    p.write_text(tiny_space(**kw))
    return p


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--budget-tokens", "10", "--budget-tokens: got 10; allowed: at least one window"),
        ("--budget-flops", "1e3", "the cheapest of the space's sampled models"),
    ],
)
def test_a_budget_that_cannot_train_is_refused_up_front(
    tmp_path: Path, option: str, value: str, needle: str
) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["search", str(_space(tmp_path)), "-n", "2", option, value, "-o", str(out)]
    )
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert needle in res.output
    assert not (out / "study.db").exists()


def test_a_study_without_a_result_exits_1_and_says_why_once(tmp_path: Path) -> None:
    space = _space(tmp_path, params_max=10)  # every model is over the cap: all infeasible
    res = CliRunner().invoke(app, ["search", str(space), "-n", "2", "-o", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    lines = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert lines == [lines[0]] and lines[0].startswith("error: no result: all 2 trials infeasible")
    assert "No artists with labels" not in res.output
    assert (tmp_path / "o" / "report" / "report.md").exists()  # the report is still written


def _t(outcome: str, reason: str = "") -> SimpleNamespace:
    return SimpleNamespace(user_attrs={"outcome": outcome, "reason": reason})


def test_common_failure_reads_the_outcomes() -> None:
    assert common_failure([]) is None
    assert common_failure([_t("failed", "x"), _t("complete")]) is None
    assert common_failure([_t("failed", "oom"), _t("failed", "oom")]) == "all 2 trials failed: oom"
    two = common_failure([_t("invalid", "a"), _t("failed", "b"), _t("failed", "b")])
    assert two == "all 3 trials failed/invalid; the most common reason (2): b"
    assert common_failure([_t("interrupted", "ctrl-c")]) is None  # not finished: run again


def test_task_settings_no_model_of_the_space_can_meet_are_one_line(tmp_path: Path) -> None:
    text = (
        tiny_space()
        .replace("task: {name: lm, options: {eval_tokens: 512}}", "task: {name: mqar, options: "
                 "{vocab_size: 512}}")  # fmt: skip
        .replace("metric: bits_per_byte, direction: minimize", "metric: accuracy, "
                 "direction: maximize")  # fmt: skip
    )
    space = tmp_path / "space.yaml"
    space.write_text(text)
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["search", str(space), "-n", "2", "-o", str(out)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "task (vocab_size): got 256; allowed: >= 512" in res.output
    assert "for some model of the space" in res.output and not (out / "study.db").exists()
