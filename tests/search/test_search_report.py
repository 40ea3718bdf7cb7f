"""The search report is a function of its saved files: a report folder is drawn again, byte
for byte, without the study."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _spaces import tiny_space
from typer.testing import CliRunner

from archsearch.cli import app

runner = CliRunner()

TINY = tiny_space(first_direction=False)

DRAWN = ("pareto.png", "hypervolume.png", "curves.png", "families.csv", "report.md")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_report_folder_is_drawn_again_from_its_saved_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "run"
    r = runner.invoke(app, ["search", str(space), "-n", "5", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    report = out / "report"
    for name in ("trials.csv", "curves.csv", "fidelity.csv", "study.json", *DRAWN):
        assert (report / name).stat().st_size > 0, name
    before = _files(report)
    md = (report / "report.md").read_text()
    assert "flops_fwd" in md and "archsearch search" in md

    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    for name in DRAWN:
        (copy / name).unlink()

    def no_study(*a: object, **k: object) -> None:
        raise AssertionError("a redraw opened the study")

    import archsearch.search.study as study

    monkeypatch.setattr(study, "open_storage", no_study)
    r = runner.invoke(app, ["report", str(copy), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trials"] == 5
    assert _files(copy) == before  # the same figures, tables and report.md, byte for byte
    # elsewhere: the saved files are copied and the report drawn there
    r = runner.invoke(app, ["report", str(copy), "--out", str(tmp_path / "other")])
    assert r.exit_code == 0, r.stderr
    assert _files(tmp_path / "other") == before


def test_a_folder_with_neither_a_study_nor_a_saved_report_is_refused(tmp_path: Path) -> None:
    r = runner.invoke(app, ["report", str(tmp_path)])
    assert r.exit_code == 2
    assert "SOURCE" in r.stderr and "report folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
