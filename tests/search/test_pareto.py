"""Pareto helpers: non-dominated sorting, crowding, the halving rule, hypervolume."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from archsearch.errors import ConfigError
from archsearch.search.objective import (
    Halving,
    constraint_value,
    crowding_distances,
    judge_rung,
    non_dominated_ranks,
    rank_order,
)
from archsearch.search.results import (
    hypervolume,
    hypervolume_history,
    pareto_front,
    reference_point,
    to_min,
)


def _brute_ranks(points):  # type: ignore[no-untyped-def]
    """Peel fronts one at a time."""
    left = set(range(len(points)))
    ranks = {}
    r = 0
    while left:
        front = {
            i
            for i in left
            if not any(
                all(a <= b for a, b in zip(points[j], points[i], strict=True))
                and points[j] != points[i]
                for j in left
            )
        }
        for i in front:
            ranks[i] = r
        left -= front
        r += 1
    return [ranks[i] for i in range(len(points))]


def test_non_dominated_ranks_match_peeling():
    rng = random.Random(0)
    for _ in range(30):
        d = rng.choice([2, 3])
        pts = [[rng.randint(0, 5) for _ in range(d)] for _ in range(rng.randint(1, 15))]
        assert non_dominated_ranks(pts) == _brute_ranks(pts)
        front = pareto_front(pts)
        assert front == [i for i, r in enumerate(non_dominated_ranks(pts)) if r == 0]


def test_crowding_keeps_the_ends_of_a_front():
    pts = [[0, 10], [1, 6], [2, 5], [3, 4.5], [10, 0]]
    d = crowding_distances(pts)
    assert d[0] == d[-1] == math.inf
    assert all(math.isfinite(x) and x > 0 for x in d[1:-1])
    # rank_order: front 0 first, the ends (infinite distance) before the middle
    order = rank_order([*pts, [11, 11]])
    assert set(order[:2]) == {0, 4} and order[-1] == 5


def test_halving_rungs_and_validation():
    assert Halving(eta=3, rungs=3).fractions() == pytest.approx([1 / 9, 1 / 3, 1])
    assert Halving(eta=2, rungs=1).fractions() == [1]
    assert Halving(eta=3).n_promoted(2) == 1 and Halving(eta=3).n_promoted(9) == 3
    with pytest.raises(ConfigError, match="halving.eta"):
        Halving(eta=1)
    with pytest.raises(ConfigError, match="halving.rungs"):
        Halving(rungs=0)


def test_judge_rung_promotes_non_dominated_and_the_top_fraction():
    h = Halving(eta=3, rungs=3)
    # (quality at the rung, FLOPs): the cheapest is promoted even though its quality is worst
    others = [[1.0, 100.0], [1.5, 50.0], [1.2, 90.0], [2.0, 60.0], [2.5, 95.0]]
    cheap = judge_rung(h, 0, 1000, [3.0, 10.0], others)
    assert cheap.non_dominated and cheap.promoted
    # dominated by [1.0, 100] and [1.5, 50]: stopped when not in the top max(1, 6 // 3) = 2
    bad = judge_rung(h, 0, 1000, [2.2, 99.0], others)
    assert not bad.non_dominated and not bad.promoted
    assert bad.competitors == 6 and bad.promoted_count == 2 and bad.rank >= 2
    # the first trial to reach a rung always goes on
    first = judge_rung(h, 1, 5000, [9.0, 9.0], [])
    assert first.promoted and first.rank == 0 and first.to_dict()["promoted"] is True


def test_constraint_value_is_a_relative_excess():
    assert constraint_value(2.2e6, 2e6) == pytest.approx(0.1)
    assert constraint_value(1e6, 2e6) == pytest.approx(-0.5)
    assert constraint_value(3.0, 0.0) == 3.0


def _grid_hypervolume(points, ref, n=60):  # type: ignore[no-untyped-def]
    """Count grid cells (cell centres) dominated by some point."""
    d = len(ref)
    lo = [min(p[k] for p in points) for k in range(d)]
    steps = [(ref[k] - lo[k]) / n for k in range(d)]
    count = 0
    for idx in itertools.product(range(n), repeat=d):
        c = [lo[k] + (idx[k] + 0.5) * steps[k] for k in range(d)]
        if any(all(p[k] <= c[k] for k in range(d)) for p in points):
            count += 1
    return count * math.prod(steps)


def test_hypervolume_exact_cases():
    assert hypervolume([[1, 1]], [2, 2]) == 1
    assert hypervolume([[0, 2], [1, 1], [2, 0]], [3, 3]) == 6  # 3 + 2 + 1
    assert hypervolume([[1, 1], [1.5, 1.5]], [2, 2]) == 1  # a dominated point adds nothing
    assert hypervolume([[3, 0]], [2, 2]) == 0  # outside the reference box
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == 6
    assert hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]) == 4 + 2 - 1


def test_hypervolume_3d_matches_a_grid_count():
    rng = random.Random(1)
    pts = [[rng.uniform(0, 1) for _ in range(3)] for _ in range(6)]
    ref = [1.1, 1.1, 1.1]
    assert hypervolume(pts, ref) == pytest.approx(_grid_hypervolume(pts, ref, 40), rel=0.06)


def test_hypervolume_history_never_decreases_and_reference_point():
    pts = [[3, 3], None, [1, 4], [2, 2], None, [5, 5]]
    ref = reference_point([p for p in pts if p is not None])
    assert ref == pytest.approx([5.4, 5.3])
    hv = hypervolume_history(pts, ref)
    assert hv[0] > 0 and hv[1] == hv[0]
    assert all(b >= a for a, b in itertools.pairwise(hv))
    assert to_min([1.0, 0.9], ["minimize", "maximize"]) == [1.0, -0.9]
