"""The metric registry: one entry per quantity that a space, a table, a report or a CSV names.

Every quantity the toolkit measures and a search may optimise or constrain is a :class:`Metric`:
its name (the same in search spaces, studies, ``profile``/``scale`` CSV columns, the live table
and ``report``), unit, direction, kind, axis scale, where its value comes from and how it is shown.
Adding a metric is one :func:`register_metric` call here plus the code that measures it (see
CONTRIBUTING.md, "Adding a metric"). The catalogue with units is in docs/search.md, "Metrics".

Where a value comes from (``source``):

=========  ==================================================================================
cost       analytic, from the model structure alone: free, recorded for every trial
memory     the profiler's FakeTensor estimate (no allocation)
latency    the profiler's measured forward latency on the profile's device
decode     the profiler's measured per-token decode latency (models that decode token by token)
train      the held-out result of a training run (a task reports it)
=========  ==================================================================================

A profiled metric's value is the profiler's row entry of the same name
(:func:`archsearch.profiling.runner.profile_point`); a quality metric's is the training
result's ``final`` entry of the same name. Low in the house: imports only errors and fmt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from archsearch import fmt
from archsearch.errors import ConfigError

Kind = Literal["profiled", "quality"]
Direction = Literal["minimize", "maximize"]
Source = Literal["cost", "memory", "latency", "decode", "train"]

#: profiler sources, in the order a profile measures them
PROFILE_SOURCES: tuple[Source, ...] = ("cost", "memory", "latency", "decode")


@dataclass(frozen=True)
class Metric:
    """One measured quantity. ``direction`` is the better way (what an objective defaults to)."""

    name: str
    unit: str
    """printed after the value: 'FLOP', 'B', 'GiB', 'ms', 'bit/byte', 'nat', '' (a count)"""
    direction: Direction
    kind: Kind
    source: Source
    description: str
    log: bool = False
    """spans orders of magnitude: plotted on a log axis"""
    formatter: Callable[[float], str] | None = None

    def format(self, v: Any) -> str:
        """The value as a person reads it ('118 MFLOP', '2.98 GiB', '12.3 ms', '2.7104')."""
        if v is None or isinstance(v, str):
            return fmt.value(v)
        return (self.formatter or fmt.value)(v)

    @property
    def label(self) -> str:
        """An axis label: 'flops_fwd (FLOP)'."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def sign(self) -> int:
        """+1 if smaller is better, -1 if larger is better (to build minimisation vectors)."""
        return 1 if self.direction == "minimize" else -1

    def value_of(self, record: Mapping[str, Any]) -> float | None:
        """This metric's value in a profiler row or a training result's ``final`` dict."""
        v = record.get(self.name)
        return None if v is None or v == "" else float(v)


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (its name must be new)."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    _REGISTRY[metric.name] = metric
    return metric


def get_metric(name: str, field: str = "metric") -> Metric:
    """The registered metric called ``name``; a one-line :class:`ConfigError` otherwise."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    raise ConfigError(field, name, "one of " + ", ".join(_REGISTRY))


def is_metric(name: Any) -> bool:
    return isinstance(name, str) and name in _REGISTRY


def all_metrics(kind: Kind | None = None) -> dict[str, Metric]:
    """Registered metrics in registration order, optionally of one kind."""
    return {n: m for n, m in _REGISTRY.items() if kind is None or m.kind == kind}


def profiled_names() -> tuple[str, ...]:
    return tuple(all_metrics("profiled"))


def sources_for(names: Iterable[str]) -> set[Source]:
    """The profiler measurements needed for ``names`` ('cost' always: it is free)."""
    need: set[Source] = {"cost"}
    for n in names:
        m = _REGISTRY.get(n)
        if m is not None and m.kind == "profiled":
            need.add(m.source)
    return need


def _gib(v: float) -> str:
    return f"{v:.3g} GiB"


for _m in (
    Metric(
        "params",
        "",
        "minimize",
        "profiled",
        "cost",
        "total parameters",
        log=True,
        formatter=lambda v: fmt.count(v, "params"),
    ),
    Metric(
        "flops_fwd",
        "FLOP",
        "minimize",
        "profiled",
        "cost",
        "analytic forward FLOPs of one window of seq_len (exact: unmasked query-key pairs "
        "only; a multiply-add is 2 FLOPs)",
        log=True,
        formatter=lambda v: fmt.si(v, "FLOP"),
    ),
    Metric(
        "flops_train",
        "FLOP",
        "minimize",
        "profiled",
        "cost",
        "training FLOPs of one window (forward + backward = 3 x forward, exact)",
        log=True,
        formatter=lambda v: fmt.si(v, "FLOP"),
    ),
    Metric(
        "decode_state_bytes",
        "B",
        "minimize",
        "profiled",
        "cost",
        "decode state after seq_len tokens (KV cache or equivalent) x the profile dtype's size",
        log=True,
        formatter=fmt.binary_bytes,
    ),
    Metric(
        "receptive_field",
        "tokens",
        "maximize",
        "profiled",
        "cost",
        "window positions the last position's output depends on (its gradient support), from "
        "the structure; seq_len when the model sees its whole window",
        formatter=lambda v: f"{v:,.0f} tokens",
    ),
    Metric(
        "peak_memory_gib",
        "GiB",
        "minimize",
        "profiled",
        "memory",
        "estimated training-step peak memory (FakeTensor live bytes) at the profile's batch "
        "and dtype, without allocating anything",
        formatter=_gib,
    ),
    Metric(
        "latency_ms",
        "ms",
        "minimize",
        "profiled",
        "latency",
        "measured forward latency of one batch, median (the profile's device, batch and dtype)",
        log=True,
        formatter=fmt.duration_ms,
    ),
    Metric(
        "decode_ms",
        "ms",
        "minimize",
        "profiled",
        "decode",
        "measured per-token decode latency at seq_len, median (models that decode token by "
        "token; the profile's device, batch and dtype)",
        log=True,
        formatter=fmt.duration_ms,
    ),
    Metric(
        "bits_per_byte",
        "bit/byte",
        "minimize",
        "quality",
        "train",
        "lm: held-out bits per byte",
        formatter=lambda v: f"{v:.4f}",
    ),
    Metric(
        "perplexity",
        "",
        "minimize",
        "quality",
        "train",
        "lm: held-out perplexity per byte",
        formatter=lambda v: f"{v:.4g}",
    ),
    Metric(
        "accuracy",
        "",
        "maximize",
        "quality",
        "train",
        "mqar, scifar: held-out accuracy",
        formatter=lambda v: f"{v:.4f}",
    ),
    Metric(
        "loss",
        "nat",
        "minimize",
        "quality",
        "train",
        "any task: held-out loss (nats per scored token)",
        formatter=lambda v: f"{v:.4f}",
    ),
):
    register_metric(_m)
