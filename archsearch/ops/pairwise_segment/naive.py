"""Dense reference of pairwise segment attention: a T×T mask from segment indices."""

from __future__ import annotations

import torch

from archsearch.ops.dense import dense_masked_attention, segment_ids


def pairwise_segment_mask(
    T: int, m: int, first: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """(T, T) bool: query i sees key j iff ``j ≤ i`` and j's segment is i's or the one before."""
    seg = segment_ids(T, m, first, device)
    pos = torch.arange(T, device=device)
    return (pos[None, :] <= pos[:, None]) & (seg[None, :] >= seg[:, None] - 1)


def naive_pairwise_segment_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: int, first: int
) -> torch.Tensor:
    """(B, H, T, d) x3 -> (B, H, T, d), computed over the whole T×T score matrix."""
    return dense_masked_attention(q, k, v, pairwise_segment_mask(q.shape[2], m, first, q.device))
