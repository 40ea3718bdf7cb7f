"""From runs to verdicts: each row's test on the seeds' numbers, then each claim's rule.

A row's verdict follows from a 95% interval, whichever way it goes (docs/search.md, "Claims"):

* ``better``: the paired difference model − baseline over the seeds both have (the same seed is
  the same data order). Its interval entirely on the better side: **reproduced**; entirely on the
  worse side: **not reproduced**; containing 0: **inconclusive at this scale**.
* ``close``: "not worse by more than the margin" (bits per byte for ``lm``). The worse-side end of
  the difference's interval within the margin: reproduced; its better-side end past the margin:
  not reproduced; the margin inside the interval: inconclusive.
* ``solves``: the model's own accuracy interval at or above the threshold: reproduced; entirely
  below it: not reproduced; straddling it: inconclusive.
* ``cheaper``: an analytic cost (no seeds): lower than the baseline's, or not.

With one seed there is no interval: every seeded test is inconclusive. A claim's rule ``all``
needs every counted row reproduced (one not reproduced decides it); ``any`` needs one (all not
reproduced decides it); anything else is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from archsearch.search.claims.spec import Claim, Row
from archsearch.search.stats import Summary, paired_difference, summarise

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"

Values = dict[int, float]
"""one model's metric in one experiment, by seed"""


@dataclass(frozen=True)
class RowResult:
    row: Row
    model: str
    """the model the row tested (a selection resolved to its winner)"""
    baseline: str | None
    verdict: str
    value: Summary | None
    """solves: the model's metric; better/close: the paired difference; cheaper: None"""
    costs: tuple[float, float] | None = None
    """cheaper: (model, baseline) cost"""
    why: str = ""


def _side(d: Summary, lower_is_better: bool) -> tuple[float, float]:
    """The interval of the difference expressed as 'how much worse' (positive = worse)."""
    if lower_is_better:
        return d.low, d.high
    return -d.high, -d.low


def judge_better(d: Summary | None, lower_is_better: bool) -> tuple[str, str]:
    if d is None or d.n < 2:
        return INCONCLUSIVE, "fewer than two paired seeds: no interval"
    lo, hi = _side(d, lower_is_better)
    if hi < 0:
        return REPRODUCED, "the interval of the difference is entirely on the better side"
    if lo > 0:
        return NOT_REPRODUCED, "the interval of the difference is entirely on the worse side"
    return INCONCLUSIVE, "the interval of the difference contains 0"


def judge_close(d: Summary | None, lower_is_better: bool, margin: float) -> tuple[str, str]:
    if d is None or d.n < 2:
        return INCONCLUSIVE, "fewer than two paired seeds: no interval"
    lo, hi = _side(d, lower_is_better)
    if hi <= margin:
        return REPRODUCED, f"at most {hi:+.4f} worse (95%), within the margin {margin:.4f}"
    if lo > margin:
        return NOT_REPRODUCED, f"at least {lo:+.4f} worse (95%), past the margin {margin:.4f}"
    return INCONCLUSIVE, f"the margin {margin:.4f} lies inside the interval"


def judge_solves(s: Summary | None, threshold: float) -> tuple[str, str]:
    if s is None or s.n < 2:
        return INCONCLUSIVE, "fewer than two seeds: no interval"
    if s.low >= threshold:
        return REPRODUCED, f"the whole interval is at or above {threshold:g}"
    if s.high < threshold:
        return NOT_REPRODUCED, f"the whole interval is below {threshold:g}"
    return INCONCLUSIVE, f"the interval contains {threshold:g}"


def rollup(rule: str, verdicts: list[str]) -> str:
    """The claim's verdict from its counted rows' verdicts."""
    if not verdicts:
        return INCONCLUSIVE
    if rule == "all":
        if NOT_REPRODUCED in verdicts:
            return NOT_REPRODUCED
        return REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE
    if REPRODUCED in verdicts:
        return REPRODUCED
    return NOT_REPRODUCED if all(v == NOT_REPRODUCED for v in verdicts) else INCONCLUSIVE


def best_of(among: tuple[str, ...], values: dict[str, Values], lower_is_better: bool) -> str | None:
    """The model with the best mean over its seeds (None if none has a finished run)."""
    scored = [(sum(v.values()) / len(v), m) for m in among if (v := values.get(m))]
    if not scored:
        return None
    pick = min(scored) if lower_is_better else max(scored)
    return pick[1]


@dataclass(frozen=True)
class ExperimentRuns:
    """What the verdicts read about one experiment: by model, the metric by seed."""

    metric: str
    lower_is_better: bool
    values: dict[str, Values]


CostFn = Any
"""(experiment, model, cost name, seq_len or None) -> float"""


def judge_row(
    row: Row,
    runs: ExperimentRuns,
    resolve: dict[str, str | None],
    cost: CostFn,
    *,
    margin: float,
    threshold: float,
) -> RowResult:
    model = resolve.get(row.model, row.model)
    base = resolve.get(row.baseline, row.baseline) if row.baseline else None
    if model is None or (row.baseline and base is None):
        return RowResult(row, row.model, row.baseline, INCONCLUSIVE, None, why="no finished run")
    if row.test == "cheaper":
        a, b = (
            cost(row.experiment, model, row.cost, row.seq_len),
            cost(row.experiment, base, row.cost, row.seq_len),
        )
        verdict = REPRODUCED if a < b else NOT_REPRODUCED
        why = f"{a / b:.3f}x the baseline's" if b else "the baseline's cost is 0"
        return RowResult(row, model, base, verdict, None, (a, b), why)
    mine = runs.values.get(model, {})
    if row.test == "solves":
        s = summarise(list(mine.values())) if mine else None
        verdict, why = judge_solves(s, threshold)
        return RowResult(row, model, None, verdict, s, why=why)
    d = paired_difference(mine, runs.values.get(base or "", {}))
    if row.test == "close":
        verdict, why = judge_close(d, runs.lower_is_better, margin)
    else:
        verdict, why = judge_better(d, runs.lower_is_better)
    return RowResult(row, model, base, verdict, d, why=why)


def judge_claim(
    claim: Claim,
    runs: dict[str, ExperimentRuns],
    cost: CostFn,
    *,
    margin: float,
    threshold: float,
) -> tuple[str, list[RowResult], dict[str, str | None]]:
    """The claim's verdict, its rows' results and what each selection resolved to."""
    resolve: dict[str, str | None] = {}
    for s in claim.selections:
        er = runs[s.experiment]
        resolve[s.name] = best_of(s.among, er.values, er.lower_is_better)
    results = [
        judge_row(r, runs[r.experiment], resolve, cost, margin=margin, threshold=threshold)
        for r in claim.rows
    ]
    verdict = rollup(claim.rule, [r.verdict for r in results if r.row.counts])
    return verdict, results, resolve


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
