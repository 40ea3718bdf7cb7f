"""What one trial measures: profiled metrics (before training) and the halving rule (during it).

Profiled metrics are computed before any training, so a variant that breaks a constraint on
parameters, FLOPs, memory, latency or decode state is rejected without spending a training run:

=====================  =========================================================================
``params``             exact parameter count (modules built on the meta device)
``flops_fwd``          analytic forward FLOPs of one window of ``seq_len`` (exact: unmasked
                       query-key pairs only; a multiply-add is 2 FLOPs)
``flops_train``        3 x ``flops_fwd``
``decode_state_bytes`` decode state after ``seq_len`` tokens x the profile dtype's element size
``peak_memory_gib``    estimated training-step peak (FakeTensor live bytes) at the profile's batch
                       and dtype, without allocating anything
``latency_ms``         measured forward latency (median of the profile's repeats) on the
                       profile's device, batch and dtype
=====================  =========================================================================

Multi-fidelity (successive halving). Optuna cannot prune multi-objective studies
(``Trial.report`` raises), so the search does its own *asynchronous successive halving* over the
training budget, ranked the multi-objective way (MO-ASHA, Schmucker et al. 2021): every trial
trains on the full budget's schedule and is evaluated at the rungs ``B·η^-(R-1)``, ..., ``B/η``,
``B``. At a rung below the top, the trial is compared with every trial that reached the same rung;
it continues if it is non-dominated among those ``n`` on (quality at that rung, the profiled
objectives), or among the best ``max(1, ⌊n/η⌋)`` of them by non-dominated sorting with ties
within a front broken by crowding distance. Otherwise it stops and is recorded as *stopped at
rung r*, with its rank. So a cheap variant is never stopped only for being worse than dearer
ones (it may end up on the front); a variant both dearer and worse than another is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archsearch.search.results import dominates

if TYPE_CHECKING:
    from archsearch.model.config import ModelConfig
    from archsearch.profiling.profiles import Profile
    from archsearch.search.space import SearchSpace

COST_METRICS = ("params", "flops_fwd", "flops_train", "decode_state_bytes")
"""analytic: free to compute, always recorded"""


def needed_profile_metrics(space: SearchSpace) -> set[str]:
    from archsearch.metrics import profiled_names

    named = {o.metric for o in space.objectives} | {c.metric for c in space.constraints}
    return {m for m in named if m in profiled_names()} | set(COST_METRICS)


def profile_metrics(
    cfg: ModelConfig, seq_len: int, prof: Profile, wanted: set[str]
) -> dict[str, float]:
    """The profiled metrics in ``wanted`` (plus the free analytic ones) of one variant."""
    from archsearch.model.costs import model_cost
    from archsearch.model.transformer import count_params

    cost = model_cost(cfg, seq_len)
    out: dict[str, float] = {
        "params": count_params(cfg)["total"],
        "flops_fwd": cost.forward_exact,
        "flops_train": cost.training_exact,
        "decode_state_bytes": cost.decode_state * prof.torch_dtype.itemsize,
    }
    if "peak_memory_gib" in wanted:
        from archsearch.profiling.memory import estimate_memory

        est = estimate_memory(
            cfg, seq_len, batch=prof.batch_size, dtype=prof.torch_dtype, device=prof.device
        )
        out["peak_memory_gib"] = est.training_peak_bytes / 2**30
    if "latency_ms" in wanted:
        out["latency_ms"] = forward_latency_ms(cfg, seq_len, prof)
    return out


def forward_latency_ms(cfg: ModelConfig, seq_len: int, prof: Profile) -> float:
    """Median forward latency (no grad) of a freshly built model, with the profile's settings."""
    import torch

    from archsearch.profiling.memory import build_in_dtype
    from archsearch.profiling.timing import time_fn

    saved = torch.get_num_threads()
    if prof.threads is not None:
        torch.set_num_threads(prof.threads)
    try:
        torch.manual_seed(0)
        model = build_in_dtype(cfg, prof.torch_dtype, prof.device).eval()
        fwd = torch.compile(model) if prof.compile else model
        idx = torch.randint(0, cfg.vocab_size, (prof.batch_size, seq_len), device=prof.device)
        with torch.no_grad():
            t = time_fn(
                lambda: fwd(idx), device=prof.device, warmup=prof.warmup, repeats=prof.repeats
            )
        return t.median_ms
    finally:
        torch.set_num_threads(saved)
        if prof.device == "cuda":
            torch.cuda.empty_cache()


def constraint_value(value: float, bound: float) -> float:
    """Optuna's convention (feasible iff <= 0), as a relative excess so that constraints on
    different scales add up sensibly: ``value / bound - 1`` (``value - bound`` if bound <= 0)."""
    return value / bound - 1.0 if bound > 0 else value - bound


# ---------------------------------------------------------------------------------------------
# successive halving


@dataclass(frozen=True)
class Halving:
    """Rungs at ``budget · eta^-(rungs-1)``, ..., ``budget / eta``, ``budget``.

    ``rungs = 1`` turns halving off (every trial trains on the full budget)."""

    eta: int = 3
    rungs: int = 3

    def __post_init__(self) -> None:
        from archsearch.errors import require

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
