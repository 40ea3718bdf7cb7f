"""Dense reference of grouped causal attention: a T×T same-group-and-causal mask."""

from __future__ import annotations

import torch

from archsearch.ops.dense import dense_masked_attention, segment_ids


def grouped_mask(
    T: int, group: int, first: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """(T, T) bool: query i sees key j iff both lie in the same group and ``j ≤ i``."""
    g = segment_ids(T, group, first, device)
    pos = torch.arange(T, device=device)
    return (g[:, None] == g[None, :]) & (pos[None, :] <= pos[:, None])


def naive_grouped_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: int, first: int = 0
) -> torch.Tensor:
    """(B, H, T, d) x3 -> (B, H, T, d), computed over the whole T×T score matrix."""
    return dense_masked_attention(q, k, v, grouped_mask(q.shape[2], group, first, q.device))
