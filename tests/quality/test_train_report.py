"""A run's files: result.json and curve.csv round-trip, curve.png is redrawn from them alone, and
the summary table is built from a saved record."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from archsearch.quality.report import read_run, redraw_curve, summary_rows, write_result
from archsearch.quality.train import CurvePoint, TrainResult

PNG = b"\x89PNG\r\n\x1a\n"


def result(metric: str = "bits_per_byte", status: str = "completed") -> TrainResult:
    accuracy = metric == "accuracy"
    curve = [
        CurvePoint(
            step=s,
            tokens=s * 64,
            train_seconds=0.5 * s,
            lr=1e-3,
            train_loss=None if s == 0 else 3.0 - 0.1 * s,
            metrics={"loss": 5.0 - 0.2 * s, metric: (0.1 * s if accuracy else 7.0 - 0.3 * s)},
        )
        for s in (0, 4, 8)
    ]
    return TrainResult(
        status=status,  # type: ignore[arg-type]
        reason="budget reached after 8 steps (512 tokens)",
        task="mqar" if accuracy else "lm",
        metric=metric,
        higher_is_better=accuracy,
        final=dict(curve[-1].metrics),
        best={"value": curve[-1].metrics[metric], "step": 8, "tokens": 512},
        baseline={"chance_accuracy": 0.0625} if accuracy else {"unigram_bits_per_byte": 4.25},
        steps=8,
        tokens_seen=512,
        train_seconds=1.25,
        wall_seconds=3.5,
        tokens_per_s=409.6,
        params=12345,
        curve=curve,
        train_losses=[(s, 3.0 - 0.05 * s) for s in range(1, 9)],
        model={"name": "tiny"},
    )


@pytest.mark.parametrize("metric", ["bits_per_byte", "accuracy"])
def test_the_curve_is_redrawn_from_the_saved_files(tmp_path: Path, metric: str) -> None:
    res = result(metric)
    files = write_result(tmp_path / "run", res, command="archsearch train x.yaml")
    png = Path(files["curve_png"]).read_bytes()
    assert png[:8] == PNG
    record, rows = read_run(tmp_path / "run")
    assert record["command"] == "archsearch train x.yaml" and record["final"] == res.final
    assert [r["step"] for r in rows] == [0, 4, 8] and rows[0]["train_loss"] is None
    assert rows[-1][f"eval_{metric}"] == res.final[metric]
    again = redraw_curve(tmp_path / "run", tmp_path / "again.png")
    assert again.read_bytes() == png  # nothing but the saved files goes into the figure


def test_a_run_without_a_curve_writes_no_plot(tmp_path: Path) -> None:
    res = result()
    res.curve = []
    files = write_result(tmp_path, res)
    assert "curve_png" not in files and not (tmp_path / "curve.png").exists()
    assert (tmp_path / "curve.csv").read_text() == "step\n"


def test_non_finite_values_are_strict_json(tmp_path: Path) -> None:
    res = result(status="diverged")
    res.final = {"loss": math.nan, "bits_per_byte": math.inf}
    write_result(tmp_path, res)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["final"] == {"loss": "nan", "bits_per_byte": "inf"}
    assert dict(summary_rows(record))["final bits_per_byte"] == "inf"


def test_summary_rows_of_a_saved_record(tmp_path: Path) -> None:
    write_result(tmp_path, result("accuracy"))
    record, _ = read_run(tmp_path)
    assert summary_rows(record) == [
        ("final accuracy", "0.8000"),
        ("best accuracy", "0.8000 (step 8)"),
        ("chance accuracy", "0.0625"),
        ("held-out loss (nats)", "3.4000"),
        ("steps", "8"),
        ("tokens seen", "512"),
        ("training time", "1.2 s (wall 3.5 s)"),
        ("tokens/s", "410"),
        ("parameters", "12,345"),
    ]
    no_final = {**record, "final": {}, "best": {}}
    assert dict(summary_rows(no_final))["final accuracy"] == "nan"
