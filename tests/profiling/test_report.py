"""Scaling-report pieces on synthetic points whose answers are known exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from archsearch.profiling.report import fit_exponents, pivot_table, read_points, write_csv
from archsearch.profiling.runner import Point, upper_fit_points

LENGTHS = [2**k for k in range(10, 21)]


def _points(fn, variant: str = "v", theory: float = 1.5) -> list[Point]:  # type: ignore[no-untyped-def]
    return [
        Point(
            variant,
            T,
            "ok",
            {
                "variant": variant,
                "seq_len": T,
                "flops_mixing_fcm": fn(T),
                "flop_exponent_theory": theory,
            },
        )
        for T in LENGTHS
    ]


def test_upper_fit_points_takes_the_upper_half_of_the_valid_points() -> None:
    xs, ys = upper_fit_points([1, 2, 4, 8, 16], [1.0, 0.0, 3.0, None, 5.0])  # type: ignore[list-item]
    assert xs == [4, 16] and ys == [3.0, 5.0]  # 0 and None are not points; 3 valid -> top 2
    assert upper_fit_points([1], [1.0]) == ([], [])


def test_fitted_exponent_recovers_a_known_power_law() -> None:
    pts = _points(lambda T: 7 * T**1.5)
    (fit,) = fit_exponents(pts, ["v"], ["mixing"])
    assert fit["fitted_exponent"] == pytest.approx(1.5, abs=1e-9)
    assert fit["theory"] == 1.5 and fit["fit_to"] == 2**20


def test_fit_is_asymptotic_a_linear_term_fades() -> None:
    # T + T²/1000: the whole range would give ~1.6; the upper half is close to 2
    (fit,) = fit_exponents(_points(lambda T: T + T * T / 1000), ["v"], ["mixing"])
    assert fit["fitted_exponent"] == pytest.approx(2.0, abs=0.02)
    assert fit["fit_from"] == 2**15


def test_csv_has_every_column_of_every_row(tmp_path: Path) -> None:
    pts = [
        Point("a", 1, "ok", {"variant": "a", "seq_len": 1, "x": 1.5}),
        Point("b", 2, "invalid", {"variant": "b", "seq_len": 2, "note": "no"}),
    ]
    write_csv(pts, tmp_path / "s.csv")
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert rows == [
        {"variant": "a", "seq_len": "1", "x": "1.5", "note": ""},
        {"variant": "b", "seq_len": "2", "x": "", "note": "no"},
    ]


def test_pivot_marks_invalid_lengths() -> None:
    pts = _points(lambda T: T, "a") + [Point("b", 1024, "invalid", {"note": "x"})]
    lines = pivot_table(pts, ["a", "b"], "flops_mixing_fcm")
    assert lines[0] == "| T | a | b |"
    assert lines[2].startswith("| 1,024 | 1.02 k | invalid |")


def test_scaling_csv_reads_back_as_written(tmp_path: Path) -> None:
    row = {
        "variant": "a",
        "seq_len": 1024,
        "status": "ok",
        "params": 123,
        "flops_counters_agree": True,
        "peak_memory_gib": 476446880 / 2**30,
        "latency_ms": 232.49213,
    }
    write_csv([Point("a", 1024, "ok", row)], tmp_path / "s.csv")
    (pt,) = read_points(tmp_path / "s.csv")
    assert pt.variant == "a" and pt.seq_len == 1024 and pt.status == "ok"
    # GiB keep every digit, so the bytes come back exactly; other floats keep 6 digits
    assert pt.row["peak_memory_gib"] * 2**30 == 476446880
    assert pt.row["latency_ms"] == 232.492 and pt.row["flops_counters_agree"] is True
    assert pt.row["params"] == 123
