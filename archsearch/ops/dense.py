"""What the naive references in ``archsearch.ops`` share: segment indices, masked attention.

Deliberately plain: a full T×T score matrix, ``-inf`` where a pair is not allowed, one softmax.
Use it on small shapes (tests); the fast paths never build a T×T tensor.
"""

from __future__ import annotations

import torch


def segment_ids(
    T: int, length: int, first: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """(T,) segment index of each position: ``[0, first)`` is segment 0 when ``first > 0``, then
    every ``length`` tokens start a new segment (the last one may be shorter)."""
    pos = torch.arange(T, device=device)
    if first <= 0:
        return pos // length
    return torch.where(pos < first, 0, 1 + (pos - first).div(length, rounding_mode="floor"))


def dense_masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed_TT: torch.Tensor
) -> torch.Tensor:
    """``softmax(q·kᵀ/√d, masked by allowed) @ v`` on (B, H, T, d); ``allowed_TT[i, j]`` says
    whether query i sees key j (every row needs at least one allowed key)."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return scores.masked_fill(~allowed_TT, float("-inf")).softmax(-1) @ v
