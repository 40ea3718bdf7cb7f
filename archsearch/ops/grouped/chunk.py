"""Blocked grouped causal attention (docs/architectures.md, "S2-Attn").

Each run of equal-length groups is one batch of ``scaled_dot_product_attention(is_causal=True)``
calls, so the work is O(T·group), never a T×T mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segment_runs(T: int, group: int, first: int = 0) -> list[tuple[int, int, int]]:
    """Split [0, T) into a first segment [0, first), then groups of ``group``, the last shorter.

    Returns runs ``(start, length, count)`` of ``count`` consecutive equal-length segments.
    """
    runs: list[tuple[int, int, int]] = []
    pos = 0
    if first > 0:
        f = min(first, T)
        runs.append((0, f, 1))
        pos = f
    n_full = (T - pos) // group
    if n_full:
        runs.append((pos, group, n_full))
        pos += n_full * group
    if pos < T:
        runs.append((pos, T - pos, 1))
    return runs


def grouped_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: int, first: int = 0
) -> torch.Tensor:
    """Causal attention inside contiguous segments (see :func:`segment_runs`); (B, h, T, d)."""
    B, h, T, d = q.shape
    outs = []
    for start, length, count in segment_runs(T, group, first):
        end = start + length * count

        def blocks(
            t: torch.Tensor,
            start: int = start,
            end: int = end,
            count: int = count,
            length: int = length,
        ) -> torch.Tensor:
            return t[:, :, start:end].reshape(B, h * count, length, d)

        o = F.scaled_dot_product_attention(blocks(q), blocks(k), blocks(v), is_causal=True)
        outs.append(o.reshape(B, h, count * length, d))
    return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]


def grouped_pairs(T: int, group: int, first: int = 0) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of :func:`grouped_causal_attention`.

    exact: causal pairs inside a segment; dense: every pair inside a segment (whole blocks)."""
    exact = dense = 0
    for _, length, count in segment_runs(T, group, first):
        exact += count * length * (length + 1) // 2
        dense += count * length * length
    return exact, dense
