"""Tables and help that do not confuse: the model family and the mixers in separate columns,
trials.csv's quality metrics in one column per fidelity, table values never broken across
lines at 80 columns, and --help without source line breaks, reStructuredText or <type>
placeholders."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.console import Console
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.cli._help import clean_help
from archsearch.cli._live import LiveView, PlainView
from archsearch.search.report import _families, _write_table, load_saved
from archsearch.search.results import (
    TrialRecord,
    model_family,
    model_label,
    model_mixers,
    trial_columns,
)

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


# ---- family and mixers ------------------------------------------------------------------------


HYBRID = {
    "family": {"kind": "decoder"},
    "layers": [{"mixer": {"kind": k}} for k in ("hsm", "hsm", "softmax", "hsm")],
}


def test_a_hybrid_shows_its_family_and_its_mix() -> None:
    assert model_label(HYBRID) == "hsm+softmax"
    assert model_family(HYBRID) == "decoder"
    assert model_mixers(HYBRID) == "hsm×3+softmax×1"
    perceiver = {"family": "perceiver_ar", "layers": [{"mixer": {"kind": "softmax"}}] * 2}
    assert (model_family(perceiver), model_mixers(perceiver)) == ("perceiver_ar", "softmax×2")


def _record(number: int, outcome: str, **kw: Any) -> TrialRecord:
    state = {"complete": "COMPLETE", "stopped": "PRUNED"}[outcome]
    return TrialRecord(
        number=number,
        state=state,
        outcome=outcome,
        reason="" if outcome == "complete" else "stopped at rung 0 (1,536 tokens): rank 4 of 4",
        label="hsm+softmax",
        params={"d_model": 16},
        family="decoder",
        mixers="hsm×3+softmax×1",
        **kw,
    )


def _two_records() -> list[TrialRecord]:
    full = _record(
        0,
        "complete",
        values={"bits_per_byte": 6.5, "flops_fwd": 1.4e6},
        metrics={"bits_per_byte": 6.5, "flops_fwd": 1.4e6, "loss": 4.5},
        fidelity=[
            {"rung": 0, "tokens": 1536, "value": 6.9, "promoted": True},
            {"rung": 1, "tokens": 3072, "value": 6.5},
        ],
    )
    stopped = _record(
        1,
        "stopped",
        metrics={"bits_per_byte": 7.4, "flops_fwd": 7.2e5, "loss": 5.1},
        fidelity=[{"rung": 0, "tokens": 1536, "value": 7.4, "promoted": False}],
    )
    return [full, stopped]


def test_trials_csv_has_a_column_per_fidelity_and_reads_back(tmp_path: Path) -> None:
    objectives = ["bits_per_byte", "flops_fwd"]
    records = _two_records()
    rows = [r.row(objectives) for r in records]
    cols = trial_columns(rows, objectives)
    assert cols[:9] == [
        "number",
        "state",
        "outcome",
        "label",
        "family",
        "mixers",
        "feasible",
        "bits_per_byte@full",
        "bits_per_byte@rung0",
    ]
    assert "bits_per_byte" not in cols and cols[9] == "flops_fwd"  # profiled: no fidelity
    assert cols.index("loss@full") < cols.index("loss@rung0") < cols.index("rung")
    assert cols[-2:] == ["duplicate_of", "reason"]
    # the stopped trial's rung value is not in the full-budget column
    assert rows[1].get("bits_per_byte@full") is None and rows[1]["bits_per_byte@rung0"] == 7.4
    assert rows[0]["bits_per_byte@full"] == 6.5 and "bits_per_byte@rung0" not in rows[0]

    _write_table(rows, tmp_path / "trials.csv", cols)
    settings = {
        "objectives": [{"metric": m, "direction": "minimize"} for m in objectives],
        "task": {"name": "lm", "options": {}},
    }
    (tmp_path / "study.json").write_text(json.dumps({"study": "s", "settings": settings}))
    data, _ = load_saved(tmp_path)
    full, stopped = data.records
    assert full.values == {"bits_per_byte": 6.5, "flops_fwd": 1.4e6}
    assert full.metrics["loss"] == 4.5 and stopped.metrics["bits_per_byte"] == 7.4
    assert stopped.values == {}
    assert (full.family, full.mixers) == ("decoder", "hsm×3+softmax×1")
    fam = _families(data, data.front())
    assert list(fam[0])[:3] == ["family", "mixers", "trials"]
    assert (fam[0]["family"], fam[0]["mixers"]) == ("decoder", "hsm+softmax")


# ---- the live table and the plain lines --------------------------------------------------------


class _Settings:
    objectives = ["bits_per_byte", "flops_fwd"]
    directions = ["minimize", "minimize"]


@pytest.mark.parametrize("width", [80, 120])
def test_the_live_table_shows_family_and_mixers_whole(width: int) -> None:
    view = LiveView("tiny", 8, _Settings(), quiet=True)
    view.records = _two_records()
    buf = io.StringIO()
    view._console = con = Console(file=buf, width=width, force_terminal=False)
    con.print(view._render(final=True))
    text = buf.getvalue()
    assert "decoder" in text and "hsm×3+softmax×1" in text
    assert max(len(line) for line in text.splitlines()) <= width
    for word in ("stopped", "complete", "6.5"):
        assert word in text


def test_plain_lines_name_the_family_and_the_mixers(capsys: pytest.CaptureFixture[str]) -> None:
    view = PlainView("tiny", 2, _Settings())
    view.trial_finished(_two_records()[0])
    assert "trial 0 (decoder, hsm×3+softmax×1) complete" in capsys.readouterr().err


# ---- tables at 80 columns ---------------------------------------------------------------------


def _whole(text: str, values: list[str]) -> None:
    flat = " ".join(text.split())
    for v in values:
        assert v in text, f"{v!r} broken across lines:\n{text}"
    assert flat  # something was printed


@pytest.mark.parametrize("width", ["80", "60"])
def test_build_keeps_every_setting_whole(width: str) -> None:
    model = str(ROOT / "models" / "combiner-fixed.yaml")
    args = ["build", model, "--set", "layers.0.mixer.pool=mean", "--no-count"]
    args += ["--set", "layers.0.mixer.n_heads=2", "--set", "layers.0.mixer.rope=false"]
    r = runner.invoke(app, args, env={"COLUMNS": width})
    assert r.exit_code == 0, r.output
    s = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    pairs = [f"{k}={v}" for layer in s["layers"] for k, v in layer["non_default"].items()]
    assert {"block_size=sqrt", "pool=mean", "rope=False"} <= set(pairs)
    _whole(r.stdout, pairs)


def test_mixers_keeps_every_hyperparameter_whole() -> None:
    r = runner.invoke(app, ["mixers"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    rows = json.loads(runner.invoke(app, ["mixers", "--json"]).stdout)
    pairs = [f"{k}={v}" for row in rows for k, v in row["hyperparameters"].items()]
    assert "variant=fixed" in pairs
    _whole(r.stdout, pairs + [row["name"] for row in rows])


# ---- --help ------------------------------------------------------------------------------------


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = [(path, cmd)]
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        out += _commands(sub, (*path, name))
    return out


def _source_breaks(cmd: Any) -> list[tuple[str, str]]:
    """(last word, next word) of every line break inside a sentence of the source help."""
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    texts += [
        getattr(s, "help", None) or "" for s in (getattr(cmd, "commands", None) or {}).values()
    ]
    pairs = []
    for text in texts:
        for a, b in re.findall(r"(\S+)[ \t]*\n[ \t]*(\S+)", text):
            if not a.endswith((".", ":", ";")) and not re.match(r"[-*•]|\d+[.)]", b):
                pairs.append((a, b))
    return pairs


BAD = (
    "``",
    ":func:",
    ":class:",
    ":mod:",
    "<bool>",
    "<str>",
    "<int>",
    "<float>",
    "<path>",
    "<list[",
)


def test_every_help_reads_well() -> None:
    """No reStructuredText, no <type> placeholders, no line ending mid-sentence where the
    source text was wrapped (COLUMNS=100)."""
    raw = _commands(typer.main.get_command(app))  # the help texts as written in the source
    assert len(raw) > 10
    for path, cmd in raw:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert r.exit_code == 0, (path, r.output)
        out = r.stdout
        for bad in BAD:
            assert bad not in out, (path, bad)
        breaks = set(_source_breaks(cmd))
        rows = out.splitlines()
        for a, b in zip(rows, rows[1:], strict=False):
            right = a.rfind("│") if "│" in a else len(a)
            left, nxt = a[:right].rstrip(), b.strip(" │").split()
            if not left.strip(" │") or not nxt:
                continue
            # a break is the source's when the next word would have fitted on the line
            fits = len(left) + 1 + len(nxt[0]) <= right - 1
            assert not (fits and (left.split()[-1], nxt[0]) in breaks), (path, a, b)


def test_clean_help() -> None:
    text = "Do a thing with ``--json``; see :func:`archsearch.x.run`.\nMore words.\n\n- one\n- two"
    assert clean_help(text) == "Do a thing with --json; see run. More words.\n\n- one\n- two"
