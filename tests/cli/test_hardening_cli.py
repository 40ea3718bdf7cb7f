"""Hardening of the command line: one-line usage errors, markup in names printed literally,
safe output folder names, writability checked first, and the one overwrite rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.outputs import folder_name

runner = CliRunner()
MARKUP = ["[bold red]x[/]", "[/]", "$\\foo{$"]


def _model(tmp_path: Path, name: str) -> Path:
    p = tmp_path / "m.yaml"
    p.write_text(
        f"name: {json.dumps(name)}\nd_model: 16\nvocab_size: 256\nmax_seq_len: 32\n"
        "pos_encoding: rope\nlayers:\n  - {repeat: 2, mixer: {kind: softmax, n_heads: 2}}\n"
    )
    return p


def _one_line(r, needle: str) -> str:
    lines = r.stderr.splitlines()
    assert r.exit_code == 2, r.stderr + r.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["search", "quickstart", "--workers", "0"],
            "error: --workers: got 0; allowed: an integer from 1 to 256",
        ),
        (
            ["train", "m.yaml", "--lr", "nan"],
            "error: --lr: got nan; allowed: a finite number > 0 and ≤ 10",
        ),
        (
            ["search", "quickstart", "--trials", "abc"],
            "error: --trials: got 'abc'; allowed: an integer",
        ),
        (
            ["build"],
            "error: MODEL: missing; allowed: model config YAML, as in archsearch build [OPTIONS] "
            "MODEL",
        ),
        (["nope"], "error: archsearch nope: no such command; allowed: one of build,"),
        (
            ["build", "m.yaml", "--nope"],
            "error: --nope: no such option; allowed: one of --seq-len,",
        ),
        (["build", "m.yaml", "-T"], "error: -T: missing value; allowed:"),
    ],
)
def test_usage_errors_are_one_line(argv, line):
    r = runner.invoke(app, argv)
    got = _one_line(r, "")
    assert got.startswith(line), got
    assert "Usage" not in r.stdout + r.stderr and "╭" not in r.stdout + r.stderr


def test_help_unchanged_and_study_alone_shows_help():
    r = runner.invoke(app, ["build", "--help"])
    assert r.exit_code == 0 and "Usage" in r.stdout and "--seq-len" in r.stdout
    for argv in (["study"], []):
        r = runner.invoke(app, argv)
        assert r.exit_code == 0 and "Usage" in r.stdout, argv  # help on stdout, exit 0
    assert "recover" in runner.invoke(app, ["study"]).stdout


def test_error_values_with_line_breaks_stay_on_one_line(tmp_path):
    r = runner.invoke(app, ["build", str(_model(tmp_path, "x")), "-T", "1\n2"])
    _one_line(r, "seq_len")


@pytest.mark.parametrize("name", MARKUP)
def test_markup_names_print_literally(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = _model(tmp_path, name)
    r = runner.invoke(app, ["build", str(m), "--no-count"])
    assert r.exit_code == 0, r.stderr
    assert name in r.stdout
    r = runner.invoke(app, ["profile", str(m), "--metrics", "flops", "--no-fvcore"])
    assert r.exit_code == 0, r.stderr
    assert name in r.stdout
    r = runner.invoke(app, ["train", str(m), "--budget-steps", "2", "--evals", "1"])
    assert r.exit_code == 0, r.stderr
    assert name in r.stdout
    # the default folder is a safe name under runs/train, never a path the name spells
    made = list((tmp_path / "runs" / "train").iterdir())
    assert [p.name for p in made] == [folder_name(f"{name}-lm")]


@pytest.mark.slow
@pytest.mark.parametrize("name", MARKUP)
def test_markup_space_name_through_search_and_report(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "s.yaml"
    space.write_text(
        f"version: 1\nname: {json.dumps(name)}\nseq_len: 32\n"
        "fixed: {vocab_size: 256, max_seq_len: 32}\n"
        "params:\n  d_model: {choices: [16]}\n  n_layers: {low: 1, high: 1}\n"
        "layers:\n  mix: uniform\n  mixer:\n    softmax: {n_heads: {choices: [2]}}\n"
        "objectives:\n  - {metric: bits_per_byte, direction: minimize}\n"
        "  - {metric: flops_fwd, direction: minimize}\n"
        "task: {name: lm, options: {eval_tokens: 256}}\n"
        "train: {budget_tokens: 2000, batch_size: 2, evals: 1, halving: {eta: 2, rungs: 1}}\n"
    )
    r = runner.invoke(app, ["search", str(space), "-n", "1"])
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "runs" / "search" / folder_name(name)
    assert (out / "report" / "report.md").is_file()
    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.stderr
    assert (out / "report" / "report.md").is_file()


@pytest.mark.parametrize(
    "name", ["../../../x", "/abs/dir", "..", ".", "", "a/b", "a b", "é", "x" * 300, "-rf"]
)
def test_folder_names_are_safe(name):
    f = folder_name(name)
    assert f and len(f) <= 90 and not f.startswith((".", "-"))
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in f)
    assert Path(f).name == f and ".." not in Path(f).parts


def test_folder_names_never_collide():
    names = ["a/b", "a-b", "a b", "a_b", "a:b", "[/]", "[-]", "", "-", "."]
    assert len({folder_name(n) for n in names}) == len(names)
    assert folder_name("tiny") == "tiny"


def test_overwrite_rule_profile_csv(tmp_path):
    m = _model(tmp_path, "tiny")
    csv = tmp_path / "p.csv"
    base = ["profile", str(m), "--metrics", "flops", "--no-fvcore", "--csv", str(csv)]
    assert runner.invoke(app, base).exit_code == 0 and csv.is_file()
    _one_line(runner.invoke(app, base), "--force")
    assert runner.invoke(app, [*base, "--force"]).exit_code == 0


def test_unwritable_output_fails_before_training(tmp_path):
    m = _model(tmp_path, "tiny")
    (tmp_path / "afile").write_text("x")
    r = runner.invoke(
        app, ["train", str(m), "--budget-steps", "1", "-o", str(tmp_path / "afile" / "o")]
    )
    _one_line(r, "--out")
    assert "step" not in r.stdout + r.stderr
