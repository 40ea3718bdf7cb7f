"""Successive halving over the training budget, ranked the multi-objective way (MO-ASHA).

Optuna cannot prune multi-objective studies (``Trial.report`` raises), so the search does its own
*asynchronous successive halving* over the training budget, ranked the multi-objective way
(MO-ASHA, Schmucker et al. 2021): every trial trains on the full budget's schedule and is
evaluated at the rungs ``B·η^-(R-1)``, ..., ``B/η``, ``B``. At a rung below the top, the trial is
compared with every trial that reached the same rung; it continues if it is non-dominated among
those ``n`` on (quality at that rung, the profiled objectives), or among the best
``max(1, ⌊n/η⌋)`` of them by non-dominated sorting with ties within a front broken by crowding
distance. Otherwise it stops and is recorded as *stopped at rung r*, with its rank. So a cheap
variant is never stopped only for being worse than dearer ones (it may end up on the front); a
variant both dearer and worse than another is. See docs/search.md, "Successive halving".

Pure functions of minimisation vectors: no Optuna, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archsearch.errors import require
from archsearch.search.results import dominates


@dataclass(frozen=True)
class Halving:
    """Rungs at ``budget · eta^-(rungs-1)``, ..., ``budget / eta``, ``budget``.

    ``rungs = 1`` turns halving off (every trial trains on the full budget)."""

    eta: int = 3
    rungs: int = 3

    def __post_init__(self) -> None:
        require(self.eta >= 2, "halving.eta", self.eta, "an integer >= 2")
        require(1 <= self.rungs <= 6, "halving.rungs", self.rungs, "an integer from 1 to 6")

    def fractions(self) -> list[float]:
        """Fractions of the full budget at which a trial is judged (the last one is 1)."""
        return [self.eta ** -(self.rungs - 1 - r) for r in range(self.rungs)]

    def n_promoted(self, n: int) -> int:
        return max(1, n // self.eta)


def non_dominated_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Front index of each point (0 = non-dominated), every objective minimised."""
    n = len(points)
    dominated_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                beats[i].append(j)
                dominated_by[j] += 1
            elif dominates(points[j], points[i]):
                beats[j].append(i)
                dominated_by[i] += 1
    ranks = [0] * n
    front = [i for i in range(n) if dominated_by[i] == 0]
    r = 0
    while front:
        nxt = []
        for i in front:
            ranks[i] = r
            for j in beats[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(j)
        front, r = nxt, r + 1
    return ranks


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance within one front (the ends of each objective get infinity)."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    dist = [0.0] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][k])
        lo, hi = points[order[0]][k], points[order[-1]][k]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for a, i, b in zip(order, order[1:], order[2:], strict=False):
            dist[i] += (points[b][k] - points[a][k]) / (hi - lo)
    return dist


def rank_order(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of ``points`` best first: by front, then by crowding distance (larger first),
    then by the first objective, then by index (deterministic)."""
    ranks = non_dominated_ranks(points)
    crowd = [0.0] * len(points)
    for r in set(ranks):
        members = [i for i in range(len(points)) if ranks[i] == r]
        for i, d in zip(members, crowding_distances([points[i] for i in members]), strict=True):
            crowd[i] = d
    return sorted(range(len(points)), key=lambda i: (ranks[i], -crowd[i], points[i][0], i))


@dataclass(frozen=True)
class RungDecision:
    rung: int
    tokens: int
    value: float
    rank: int
    """0-based position of this trial among the competitors at this rung"""
    competitors: int
    promoted_count: int
    non_dominated: bool = False

    @property
    def promoted(self) -> bool:
        return self.non_dominated or self.rank < self.promoted_count

    def to_dict(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "tokens": self.tokens,
            "value": self.value,
            "rank": self.rank,
            "competitors": self.competitors,
            "non_dominated": self.non_dominated,
            "promoted": self.promoted,
        }


def judge_rung(
    halving: Halving,
    rung: int,
    tokens: int,
    mine: Sequence[float],
    others: Sequence[Sequence[float]],
) -> RungDecision:
    """Where ``mine`` (minimisation vector: quality at the rung, then the profiled objectives)
    ranks among ``others`` that reached the same rung, and whether it goes on."""
    points = [list(mine), *map(list, others)]
    position = rank_order(points).index(0)
    return RungDecision(
        non_dominated=non_dominated_ranks(points)[0] == 0,
        rung=rung,
        tokens=tokens,
        value=float(mine[0]),
        rank=position,
        competitors=len(points),
        promoted_count=halving.n_promoted(len(points)),
    )
