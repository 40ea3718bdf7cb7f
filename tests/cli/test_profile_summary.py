"""``archsearch profile``'s one table across variants and lengths, its progress on stderr, and
the latency spread it flags (tiny models, CPU)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from archsearch import fmt
from archsearch.cli import app
from archsearch.cli.profile import summary_table
from archsearch.profiling.profiles import Profile
from archsearch.profiling.runner import Point

runner = CliRunner()


def _model(tmp_path: Path, name: str, mixer: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(
        f"name: {name}\nd_model: 32\nvocab_size: 64\nmax_seq_len: 256\npos_encoding: rope\n"
        f"layers:\n  - {{repeat: 2, mixer: {mixer}}}\n"
    )
    return p


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[list[Path], Path]:
    models = [
        _model(tmp_path, "soft", "{kind: softmax, n_heads: 2}"),
        _model(tmp_path, "hsm", "{kind: hsm, mixing: ab, coverage: cycle}"),
    ]
    prof = tmp_path / "quick.yaml"
    prof.write_text("warmup: 1\nrepeats: 2\nthreads: 1\ntime_budget_s: 2\n")
    return models, prof


def test_one_table_across_variants_and_lengths_with_progress_lines(
    tmp_path: Path, setup: tuple[list[Path], Path]
) -> None:
    models, prof = setup
    out = tmp_path / "p.csv"
    args = ["profile", *map(str, models), "-T", "64,128", "-p", str(prof), "--no-fvcore"]
    r = runner.invoke(app, [*args, "--csv", str(out)])
    assert r.exit_code == 0, r.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    table = r.stdout.splitlines()
    assert max(len(line) for line in table) <= 80
    assert sum("variant" in line and "latency" in line for line in table) == 1  # one header
    for row in rows:  # a line per (variant, T), every figure in its unit, never broken
        cv = float(row["fwd_estimate_cv"])
        flag = f"{100 * cv:.0f}%" + ("!" if row["fwd_unstable"] == "True" else "")
        cells = [
            row["variant"],
            f"{int(row['seq_len']):,}",
            fmt.si(int(row["params"])),
            fmt.si(int(row["flops_fwd"])),
            fmt.si(int(row["flops_train"])),
            fmt.binary_bytes(float(row["peak_memory_gib"]) * 2**30),
            fmt.duration_ms(float(row["latency_ms"])),
            flag,
        ]
        assert any(line.split() == " ".join(cells).split() for line in table), (cells, table)
    assert "FlopCounterMode" not in r.stdout and "counted 0 by" not in r.stdout  # --details
    # progress: a plain line per point on stderr (not a terminal here), no bar
    lines = r.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "soft T=64",
        "soft T=128",
        "hsm T=64",
        "hsm T=128",
    ]
    assert all("latency" in line for line in lines) and "━" not in r.stderr


def test_json_is_quiet_and_carries_the_spread(setup: tuple[list[Path], Path]) -> None:
    models, prof = setup
    r = runner.invoke(app, ["profile", str(models[0]), "-T", "64", "-p", str(prof), "--json"])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    (pt,) = json.loads(r.stdout)["points"]
    for key in ("fwd", "train", "decode"):
        cv = pt["row"][f"{key}_estimate_cv"]
        assert pt["row"][f"{key}_unstable"] is (cv > 0.10)
        assert pt["row"][f"{key}_calls"] % 2 == 0 and pt["row"][f"{key}_calls"] >= 2
    fwd = pt["details"]["latency"]["forward"]
    assert fwd["estimate_cv"] == pt["row"]["fwd_estimate_cv"] and "unstable" in fwd


def _point(name: str, T: int, ms: float, cv: float) -> Point:
    row = {
        "variant": name,
        "seq_len": T,
        "params": 1_234_567,
        "flops_fwd": 9.87e12,
        "flops_train": 2.96e13,
        "peak_memory_gib": 1.5,
        "latency_ms": ms,
        "fwd_estimate_cv": cv,
        "fwd_unstable": cv > 0.10,
    }
    return Point(name, T, "ok", row)


def test_the_table_flags_an_unstable_latency_and_fits_80_columns() -> None:
    pts = [
        _point("a-rather-long-variant-name-with-many-parts", 1_048_576, 1234.5, 0.123),
        _point("short", 4096, 0.0421, 0.02),
    ]
    con = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    con.print(summary_table(pts, Profile(), {"flops", "memory", "latency"}))
    text = con.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for value in ("1.23 s", "12%!", "42.1 µs", "2%", "1.5 GiB", "9.87 T", "29.6 T", "1,048,576"):
        assert any(value in line for line in lines), value  # whole, on one line
    (short,) = [line for line in lines if line.startswith("short")]
    assert short.rstrip().endswith(" 2%")  # stable: no flag
