"""``build`` and ``profile`` report each model's receptive field."""

import json
from pathlib import Path

from typer.testing import CliRunner

from archsearch.cli import app

runner = CliRunner()


def _model(tmp_path: Path, mixer: str, layers: int = 2) -> Path:
    p = tmp_path / "m.yaml"
    p.write_text(
        "name: m\nd_model: 32\nvocab_size: 64\nmax_seq_len: 256\n"
        f"layers:\n  - {{repeat: {layers}, mixer: {mixer}}}\n"
    )
    return p


def test_build_reports_the_receptive_field(tmp_path: Path) -> None:
    path = str(_model(tmp_path, "{kind: sliding_window, n_heads: 2, window: 16}"))
    r = runner.invoke(app, ["build", path, "--json", "--no-count"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["receptive_field"] == 2 * 15 + 1
    r = runner.invoke(app, ["build", path, "--no-count"])
    assert "receptive field: 31 of 256 tokens (only 12.1% of the window)" in r.stdout
    full = str(_model(tmp_path, "{kind: hsm}"))
    r = runner.invoke(app, ["build", full, "--no-count"])
    assert "receptive field: 256 of 256 tokens (the whole window)" in r.stdout
    cyc = str(_model(tmp_path, "{kind: hsm, coverage: cycle}"))
    assert (
        json.loads(runner.invoke(app, ["build", cyc, "--json", "--no-count"]).stdout)[
            "receptive_field"
        ]
        == 4
    )


def test_profile_csv_has_the_receptive_field(tmp_path: Path) -> None:
    path = str(_model(tmp_path, "{kind: ecp, n_heads: 2, segment_len: 32}"))
    r = runner.invoke(app, ["profile", path, "-T", "256", "--metrics", "flops", "--json"])
    assert r.exit_code == 0, r.output
    (pt,) = json.loads(r.stdout)["points"]
    assert pt["row"]["receptive_field"] == 256 - 32 * (7 - 2)
