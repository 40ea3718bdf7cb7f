"""``archsearch report A B``: two studies' fronts in one plot, hypervolumes on one scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _spaces import tiny_space
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.profiling.report import read_rows
from archsearch.search.report import StudyData, shared_normalisation
from archsearch.search.report_pair import compare_rows, fronts_figure
from archsearch.search.results import TrialRecord

runner = CliRunner()

OBJECTIVES = {
    "objectives": [
        {"metric": "bits_per_byte", "direction": "minimize"},
        {"metric": "flops_fwd", "direction": "minimize"},
    ],
    "train": {"budget_tokens": 1000},
}


def _study(name: str, points: list[tuple[float, float]]) -> StudyData:
    records = [
        TrialRecord(
            number=i,
            state="COMPLETE",
            outcome="complete",
            reason="",
            label="decoder",
            params={},
            values={"bits_per_byte": q, "flops_fwd": c},
        )
        for i, (q, c) in enumerate(points)
    ]
    return StudyData(name, OBJECTIVES, records)


def test_the_shared_normalisation_hypervolume_by_hand() -> None:
    # A: (0, 10) and (10, 0); B: (5, 5). Over both: ideal (0, 0), nadir (10, 10), reference
    # pushed out by 10 % of the range: (11, 11). Normalised: A = (0, 10/11), (10/11, 0), whose
    # area below (1, 1) is 1 * 1/11 + 1/11 * 10/11 = 21/121; B = (5/11, 5/11): (6/11)^2 = 36/121
    a, b = _study("a", [(0, 10), (10, 0)]), _study("b", [(5, 5)])
    assert shared_normalisation([a, b]) == ([0, 0], [11, 11])
    rows = compare_rows([a, b], ["A", "B"])
    assert rows[0]["hypervolume_shared"] == pytest.approx(21 / 121)
    assert rows[1]["hypervolume_shared"] == pytest.approx(36 / 121)
    # each on its own scale the numbers do not compare: B alone is a single point, area 1
    assert rows[1]["hypervolume_own"] == pytest.approx(1.0)
    assert (rows[0]["front"], rows[1]["front"]) == (2, 1)


def test_the_plot_has_one_staircase_per_study() -> None:
    fig = fronts_figure([_study("a", [(1, 10), (2, 5)]), _study("b", [(1.5, 8)])])
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == [
        "A: a (2 on the front)",
        "B: b (1 on the front)",
    ]
    assert [line.get_drawstyle() for line in ax.lines] == ["steps-post"] * 2
    assert ax.get_xscale() == "log"  # flops_fwd: a cost, on a log axis
    assert "FLOP" in ax.get_xlabel()
    same = fronts_figure([_study("q", [(1, 10)]), _study("q", [(2, 5)])]).axes[0]
    labels = [line.get_label() for line in same.lines]  # two studies of one name: told apart
    assert labels == ["A: q (1 on the front)", "B: q (1 on the front)"]
    styles = {(line.get_color(), line.get_marker()) for line in same.lines}
    assert len(styles) == 2


def _search(tmp_path: Path, name: str, text: str) -> Path:
    space = tmp_path / f"{name}.yaml"
    space.write_text(text)
    out = tmp_path / name
    r = runner.invoke(app, ["search", str(space), "-n", "3", "--rungs", "1", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    return out


def test_two_real_studies_side_by_side(tmp_path: Path) -> None:
    a = _search(tmp_path, "sa", tiny_space("sa", first_direction=False))
    b = _search(tmp_path, "sb", tiny_space("sb", hsm=False, first_direction=False))
    out = tmp_path / "pair"
    # a search folder against a saved report folder
    r = runner.invoke(app, ["report", str(a), str(b / "report"), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [s["study"] for s in rep["studies"]] == ["sa", "sb"]
    assert (out / "fronts.png").stat().st_size > 0
    rows = read_rows(out / "pair.csv")
    assert [row["study"] for row in rows] == ["sa", "sb"]
    assert all(0 <= row["hypervolume_shared"] <= 1 for row in rows)
    md = (out / "pair.md").read_text()
    assert "hypervolume (shared)" in md and "![both fronts](fronts.png)" in md
    # again into the same folder: refused, unless --force
    again = runner.invoke(app, ["report", str(a), str(b), "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.stderr
    forced = runner.invoke(app, ["report", str(a), str(b), "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.stderr

    # a study with other objectives: one line naming both studies and their objectives
    other = tiny_space("sc", first_direction=False).replace(
        "  - {metric: bits_per_byte}\n", "  - {metric: params}\n"
    )
    c = _search(tmp_path, "sc", other)
    bad = runner.invoke(app, ["report", str(a), str(c), "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 2
    line = bad.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "'sa'" in line and "'sc'" in line and "bits_per_byte" in line and "params" in line
    assert not (tmp_path / "bad").exists()


def test_different_held_out_sets_are_called_out() -> None:
    from archsearch.search.report_pair import pair_markdown

    def with_task(name: str, eval_tokens: int) -> StudyData:
        d = _study(name, [(1, 10), (2, 5)])
        d.settings = {**OBJECTIVES, "task": {"name": "lm", "options": {"eval_tokens": eval_tokens}}}
        return d

    same = [with_task("a", 4096), with_task("b", 4096)]
    md = pair_markdown(same, compare_rows(same, ["a", "b"]), "")
    assert "measure quality differently" not in md
    other = [with_task("a", 4096), with_task("b", 32768)]
    md = pair_markdown(other, compare_rows(other, ["a", "b"]), "")
    assert "measure quality differently" in md and "'eval_tokens': 32768" in md
