"""Rank agreement between a rung and the full budget: the correlations against hand-computed
values, and the report section drawn from a saved fidelity.csv."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from archsearch.search.fidelity import (
    RungAgreement,
    agreement_section,
    average_ranks,
    kendall_tau_b,
    rung_agreement,
    spearman_rho,
)
from archsearch.search.report import draw_report
from archsearch.search.results import TrialRecord


def test_kendall_tau_b_by_hand() -> None:
    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # pairs of (1,1),(2,3),(3,2),(4,4): 5 concordant, 1 discordant of 6 -> 4/6
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # ties: x = 1,1,2,3; y = 1,2,2,3. Pairs: (0,1) tied in x; (1,2) tied in y; the other 4
    # concordant. tau-b = 4 / sqrt((6-1)(6-1)) = 0.8
    assert kendall_tau_b([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)
    # a pair tied in both counts in both tie sums: x = 1,1,2; y = 5,5,6 -> 2 / sqrt(2 * 2) = 1
    assert kendall_tau_b([1, 1, 2], [5, 5, 6]) == pytest.approx(1.0)


def test_spearman_rho_by_hand() -> None:
    assert average_ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert spearman_rho([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    # ranks 1,2,3,4 vs 1,3,2,4: d² = 0+1+1+0 = 2, no ties -> 1 - 6·2 / (4·15) = 0.8
    assert spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties: ranks 1.5,1.5,3,4 and 1,2.5,2.5,4 (means 2.5); deviations (-1,-1,0.5,1.5) and
    # (-1.5,0,0,1.5): sxy = 1.5+0+0+2.25 = 3.75, sxx = 4.5, syy = 4.5 -> rho = 3.75/4.5
    assert spearman_rho([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(3.75 / 4.5)


def test_too_few_or_constant_is_undefined() -> None:
    for f in (kendall_tau_b, spearman_rho):
        assert f([], []) is None
        assert f([1, 2], [2, 1]) is None
        assert f([1, 1, 1], [1, 2, 3]) is None
        with pytest.raises(ValueError):
            f([1, 2, 3], [1, 2])
    a = RungAgreement(rung=0, tokens=100, n=2, kendall_tau=None, spearman_rho=None)
    assert a.verdict == "n too small"
    md = "\n".join(agreement_section([a], "bits_per_byte"))
    assert "| 0 | 100 | 2 | n too small | n too small | n too small |" in md
    assert "too few trials to judge" in md


def _rec(number: int, outcome: str, values: list[float], duplicate_of: int | None = None) -> Any:
    fid = [{"rung": r, "tokens": 100 * 3**r, "value": v} for r, v in enumerate(values)]
    return TrialRecord(
        number, "COMPLETE", outcome, "", "softmax", {}, fidelity=fid, duplicate_of=duplicate_of
    )


def test_rung_agreement_uses_the_complete_trials_only() -> None:
    records = [
        _rec(0, "complete", [3.0, 2.0]),
        _rec(1, "complete", [3.5, 2.5]),
        _rec(2, "complete", [4.0, 2.2]),
        _rec(3, "stopped", [9.0]),  # no final value
        _rec(4, "complete", [4.0, 2.2], duplicate_of=2),  # counted once
        _rec(5, "complete", [math.nan, 2.1]),  # diverged at the rung: left out
    ]
    (a,) = rung_agreement(records)
    assert (a.rung, a.tokens, a.n) == (0, 100, 3)
    assert a.kendall_tau == pytest.approx(1 / 3)  # pairs: (0,1)+, (0,2)+, (1,2)-
    assert a.spearman_rho == pytest.approx(0.5)
    assert rung_agreement([_rec(0, "complete", [2.0])]) == []  # one rung: halving off


STUDY = {
    "study": "tiny",
    "command": "archsearch search tiny.yaml",
    "importances_not_computed": "needs at least 3 complete trials",
    "settings": {
        "objectives": [
            {"metric": "bits_per_byte", "direction": "minimize"},
            {"metric": "flops_fwd", "direction": "minimize"},
        ],
        "task": {"name": "lm", "options": {}},
        "profile": {"name": "cpu", "device": "cpu", "dtype": "float32"},
        "train": {"budget_tokens": 900, "batch_size": 4, "lr": 0.002},
        "halving": {"eta": 3, "rungs": 2},
        "space": {"seq_len": 32},
    },
}


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_the_report_shows_the_agreement_and_warns(tmp_path: Path) -> None:
    # six complete trials whose order at rung 0 is nearly the reverse of the final one
    rung0 = [2.0, 2.1, 2.2, 2.3, 2.4, 2.5]
    final = [1.9, 1.8, 1.7, 1.6, 1.5, 1.55]
    trials, fidelity = [], []
    for i, (a, b) in enumerate(zip(rung0, final, strict=True)):
        trials.append(
            {
                "number": i,
                "state": "COMPLETE",
                "outcome": "complete",
                "label": "softmax",
                "feasible": True,
                "bits_per_byte": b,
                "flops_fwd": 1000 * (i + 1),
                "rung": 1,
            }
        )
        fidelity.append({"number": i, "rung": 0, "tokens": 300, "value": a, "promoted": True})
        fidelity.append({"number": i, "rung": 1, "tokens": 900, "value": b, "promoted": ""})
    _write(tmp_path / "trials.csv", trials)
    _write(tmp_path / "fidelity.csv", fidelity)
    curves = [{"number": f["number"], "tokens": f["tokens"], "value": f["value"]} for f in fidelity]
    _write(tmp_path / "curves.csv", curves)
    (tmp_path / "study.json").write_text(json.dumps(STUDY))
    rep = draw_report(tmp_path)
    (a,) = rep["rank_fidelity"]
    assert (a["rung"], a["tokens"], a["n"], a["verdict"]) == (0, 300, 6, "low")
    assert a["kendall_tau"] == pytest.approx(-13 / 15)  # 1 concordant, 14 discordant
    md = (tmp_path / "report.md").read_text()
    assert "| rung | tokens | n | Kendall τ | Spearman ρ | verdict |" in md
    assert "| 0 | 300 | 6 | -0.87 |" in md
    assert "- **Warning:** at rung 0, Kendall τ = -0.87 < 0.5 over 6 trials" in md
