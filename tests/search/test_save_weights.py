"""``search --save-weights``: the front's model files come with their trained weights."""

from __future__ import annotations

import json
from pathlib import Path

from _spaces import tiny_space
from typer.testing import CliRunner

import archsearch
from archsearch.cli import app

runner = CliRunner()


def test_a_search_saves_the_fronts_weights(tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(tiny_space(first_direction=False))
    out = tmp_path / "run"
    args = ["search", str(space), "-n", "3", "--rungs", "1", "-o", str(out), "--save-weights"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    front = json.loads(r.stdout)["report"]["front"]
    assert front and (out / "weights").is_dir()
    for f in front:
        yaml = Path(f["model"])
        assert yaml.with_suffix(".safetensors").is_file(), yaml
        model = archsearch.load_trained(yaml)  # the pair belongs together
        assert sum(p.numel() for p in model.parameters()) > 0
    # a report redrawn elsewhere keeps them
    r = runner.invoke(app, ["report", str(out / "report"), "-o", str(tmp_path / "copy")])
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "copy" / "pareto").glob("*.safetensors"))) == len(front)
