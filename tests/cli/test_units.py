"""Sizes on the command line: a window length counts k as 1,024, a token or step count as 1,000,
and the binary spellings (4Ki) mean 1,024 in both; the help and the errors say which."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.cli._common import parse_length
from archsearch.cli._options import parse_count
from archsearch.errors import ConfigError

MODEL = Path(__file__).resolve().parents[2] / "models" / "tiny-softmax.yaml"


@pytest.mark.parametrize(
    ("text", "length", "count"),
    [("4k", 4096, 4000), ("4Ki", 4096, 4096), ("1m", 2**20, 10**6), ("1Mi", 2**20, 2**20)],
)
def test_k_is_1024_for_lengths_and_1000_for_counts(text: str, length: int, count: int) -> None:
    assert parse_length(text) == length
    assert parse_count(text, "--budget-tokens") == count


def test_the_errors_say_which_k() -> None:
    with pytest.raises(ConfigError, match=r"4k = 4Ki = 4,096"):
        parse_length("4kk")
    with pytest.raises(ConfigError, match=r"1k = 1,000.*1Ki = 1,024"):
        parse_count("4kk", "--budget-tokens")


def test_the_help_says_which_k() -> None:
    out = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "200"}).output
    assert "k = 1,024 here" in out
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "250k = 250,000" in out


def test_train_without_a_budget_names_the_flags() -> None:
    res = CliRunner().invoke(app, ["train", str(MODEL)])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "--budget-tokens, --budget-flops, --budget-steps, --budget-seconds" in res.output
    assert "budget_tokens" not in res.output
