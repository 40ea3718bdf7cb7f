"""curve.png plots the task's headline metric in its unit: bits per byte for lm, accuracy (and
the loss beside it) for the accuracy tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_report import result

from archsearch.quality.report import plot_curve, read_run, write_result


def _figure(tmp_path: Path, metric: str):  # type: ignore[no-untyped-def]
    write_result(tmp_path / "run", result(metric))
    record, rows = read_run(tmp_path / "run")
    return plot_curve(record, rows, tmp_path / "c.png"), rows


def test_lm_curve_is_in_bits_per_byte(tmp_path: Path) -> None:
    fig, rows = _figure(tmp_path, "bits_per_byte")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "held-out bits per byte (bit/byte)"
    held = next(ln for ln in ax.get_lines() if ln.get_label().startswith("held-out"))
    assert list(held.get_ydata()) == [r["eval_bits_per_byte"] for r in rows]
    assert held.get_label() == f"held-out ({len(rows)} evaluations)"  # how many points it joins
    base = next(ln for ln in ax.get_lines() if ln.get_label() == "unigram baseline")
    assert base.get_ydata()[0] == pytest.approx(4.25)  # in bits per byte, not nats


def test_accuracy_task_leads_with_accuracy(tmp_path: Path) -> None:
    fig, _ = _figure(tmp_path, "accuracy")
    assert fig.axes[0].get_ylabel() == "held-out accuracy"
    assert "nats" in fig.axes[1].get_ylabel()
