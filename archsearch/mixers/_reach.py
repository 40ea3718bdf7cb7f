"""Receptive-field arithmetic on boolean position sets, shared by the mixers' ``reads``.

A set of positions of a ``T``-token sequence is a boolean tensor ``(T,)``. A layer's ``reads``
maps the set of output positions someone needs to the set of input positions they depend on
(their gradient support). Everything here is O(T) (a scan or a few shifted copies), never a
T×T matrix, so a receptive field is cheap at T = 1M (docs/architectures.md, "Hybrid stacks").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def prefix_reads(rows_T: torch.Tensor) -> torch.Tensor:
    """Full causal attention: every position up to the last needed row."""
    T = rows_T.shape[0]
    idx = torch.nonzero(rows_T)
    last = int(idx[-1]) if len(idx) else -1
    return torch.arange(T) <= last


def interval_reads(rows_T: torch.Tensor, lo_T: torch.Tensor) -> torch.Tensor:
    """Row ``i`` reads the interval ``[lo_T[i], i]``, with ``lo_T`` non-decreasing in ``i``.

    Position ``j`` is read iff the first needed row ``i >= j`` has ``lo_T[i] <= j`` (a later row
    has no smaller ``lo``): a reverse running minimum finds that row for every ``j`` at once.
    """
    T = rows_T.shape[0]
    pos = torch.arange(T)
    nxt = torch.where(rows_T, pos, torch.full_like(pos, T))
    nxt = torch.flip(torch.cummin(torch.flip(nxt, [0]), 0).values, [0])
    ok = nxt < T
    lo = lo_T[nxt.clamp(max=T - 1)]
    return ok & (lo <= pos)


def offset_reads(rows_T: torch.Tensor, offsets: Iterable[int]) -> torch.Tensor:
    """Row ``i`` reads ``i − o`` for each ``o`` in ``offsets`` (0 included or not): a union of
    shifted copies of the set, ``O(T)`` per offset."""
    T = rows_T.shape[0]
    out = torch.zeros_like(rows_T)
    for o in set(offsets):
        if o < T:
            out[: T - o] |= rows_T[o:]
    return out


def groups_lo(T: int, group: int, first: int | None = None) -> torch.Tensor:
    """``lo`` of causal attention inside consecutive groups of ``group`` positions, the first
    group ``first`` long (default ``group``): the start of each position's group."""
    first = group if first is None else first
    pos = torch.arange(T)
    return torch.where(pos < first, 0, first + (pos - first) // group * group)
