"""Scaling figures: fitted slopes with their point count in the legend, no fit from fewer than
three points, unit-bearing log axes, one light guide per theoretical slope."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.profiling.report import MIN_FIT_POINTS, fit_exponents, plot_metric
from archsearch.profiling.runner import Point


def _points(lengths: list[int], variants: dict[str, float], col: str) -> list[Point]:
    return [
        Point(v, T, "ok", {"variant": v, "seq_len": T, "flop_exponent_theory": k, col: T**k})
        for v, k in variants.items()
        for T in lengths
    ]


def test_no_exponent_is_fitted_from_two_points() -> None:
    pts = _points([1024, 2048], {"soft": 2}, "latency_ms")
    (fit,) = fit_exponents(pts, ["soft"], ["latency"])
    assert fit["fitted_exponent"] is None and fit["points"] == 0
    assert "too few points" in fit["note"]


def test_four_points_are_fitted_over_at_least_three() -> None:
    pts = _points([256, 512, 1024, 2048], {"soft": 2}, "flops_mixing_fcm")
    (fit,) = fit_exponents(pts, ["soft"], ["mixing"])
    assert fit["points"] == MIN_FIT_POINTS and fit["fit_from"] == 512
    assert fit["fitted_exponent"] == pytest.approx(2.0)


def _legend(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_legend_carries_the_fitted_slope_and_its_points(tmp_path: Path) -> None:
    pts = _points([2**k for k in range(10, 16)], {"soft": 2, "hsm": 1}, "flops_mixing_fcm")
    fig = plot_metric(pts, ["soft", "hsm"], "mixing", tmp_path / "m.png")
    labels = _legend(fig)
    assert "soft  $T^{2.00}$ (3 pts)" in labels and "hsm  $T^{1.00}$ (3 pts)" in labels
    # one dotted guide per distinct theoretical slope, not one per variant
    assert sorted(x for x in labels if x.startswith("guide")) == [
        "guide: slope 1",
        "guide: slope 2",
    ]
    ax = fig.axes[0]
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert any(t.endswith("FLOP") for t in ticks), ticks


def test_two_points_get_no_guide_and_a_warning(tmp_path: Path) -> None:
    pts = _points([1024, 2048], {"soft": 2, "hsm": 1}, "latency_ms")
    fig = plot_metric(pts, ["soft", "hsm"], "latency", tmp_path / "l.png")
    labels = _legend(fig)
    assert labels == ["soft  (2 pts: too few to fit)", "hsm  (2 pts: too few to fit)"]
    assert "warning" in fig.axes[0].get_title()
    assert len(fig.axes[0].lines) == 2  # the data only


def test_memory_axis_reads_in_binary_units(tmp_path: Path) -> None:
    pts = _points([2**k for k in range(10, 21)], {"soft": 1}, "peak_memory_gib")
    for p in pts:
        p.row["mem_params_bytes"] = 1
        p.row["peak_memory_gib"] = p.seq_len / 2**14  # 64 MiB .. 64 GiB
    fig = plot_metric(pts, ["soft"], "memory", tmp_path / "mem.png")
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert any("GiB" in t for t in ticks) and any("MiB" in t for t in ticks), ticks
    assert not any("10^" in t or "e+" in t for t in ticks)
    assert ax.get_yscale() == "log"
