"""Seed statistics: mean, standard deviation, Student-t 95% intervals, paired differences.

A one-seed difference is noise until shown otherwise; these are the numbers ``archsearch
compare`` and the search's ``--front-seeds`` report (docs/search.md, "Reports"). Pure Python: the
two-sided 95% Student-t quantile comes from a table for 1..30 degrees of freedom and the
Cornish-Fisher expansion beyond (within 1e-4 of the exact value there), so scipy is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: t_{0.975, df} for df = 1..30 (two-sided 95%)
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975  # Cornish-Fisher expansion of t in terms of the normal quantile
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and 95% t-interval of ``n`` values (n = 1: no spread)."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def overlaps(self, other: Summary) -> bool:
        return self.low <= other.high and other.low <= self.high


def summarise(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of ``values`` (at least one); with one value the interval is that
    value (nothing is known about the spread) and ``std`` is NaN."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("no values to summarise")
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return Summary(1, mean, math.nan, mean, mean)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def paired_difference(a: dict[int, float], b: dict[int, float]) -> Summary | None:
    """``a - b`` over the seeds both have (a paired comparison: the same seed means the same
    data order); None when they share no seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return summarise([a[s] - b[s] for s in seeds])


def distinguishable(summaries: Sequence[Summary]) -> list[bool]:
    """For points in order along a front: whether each one's interval overlaps neither of its
    neighbours' (a point with a single value is never distinguishable)."""
    out = []
    for i, s in enumerate(summaries):
        near = [summaries[j] for j in (i - 1, i + 1) if 0 <= j < len(summaries)]
        out.append(s.n > 1 and all(o.n > 1 and not s.overlaps(o) for o in near))
    return out
