"""A space's objectives and constraints, read through the metric registry.

Which metrics a space names, which of them the profiler measures before training and which a
training run reports (:mod:`archsearch.metrics`, ``Metric.kind``), objective values as a
minimisation vector (``Metric.sign``) and a constraint's value in Optuna's convention. The
profiled metrics themselves are measured by :func:`archsearch.profiling.measure.measure_metrics`
(see docs/search.md, "Metrics"); successive halving is in :mod:`archsearch.search.halving`.
"""

from __future__ import annotations

from collections.abc import Mapping

from archsearch.metrics import get_metric
from archsearch.search.halving import (  # noqa: F401  (kept importable here)
    Halving,
    RungDecision,
    crowding_distances,
    judge_rung,
    non_dominated_ranks,
    rank_order,
)
from archsearch.search.space import SearchSpace


def named_metrics(space: SearchSpace) -> list[str]:
    """Every metric the space's objectives and constraints name, objectives first, once each."""
    names = [o.metric for o in space.objectives] + [c.metric for c in space.constraints]
    return list(dict.fromkeys(names))


def is_profiled(name: str) -> bool:
    """Measured by the profiler before training (not reported by a training run)."""
    return get_metric(name).kind == "profiled"


def quality_objectives(space: SearchSpace) -> list[str]:
    """The objectives a training run reports (the rest are profiled)."""
    return [o.metric for o in space.objectives if not is_profiled(o.metric)]


def min_vector(space: SearchSpace, metrics: Mapping[str, float]) -> list[float]:
    """The objectives' values as a minimisation vector (maximised ones negated)."""
    sign = {"minimize": 1, "maximize": -1}
    return [float(metrics[o.metric]) * sign[o.direction] for o in space.objectives]


def constraint_value(value: float, bound: float) -> float:
    """Optuna's convention (feasible iff <= 0), as a relative excess so that constraints on
    different scales add up sensibly: ``value / bound - 1`` (``value - bound`` if bound <= 0)."""
    return value / bound - 1.0 if bound > 0 else value - bound
