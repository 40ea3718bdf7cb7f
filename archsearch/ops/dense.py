"""Dense masked softmax attention: the common core of the naive references in ``archsearch.ops``.

Deliberately plain: a full T×T score matrix, ``-inf`` where a pair is not allowed, one softmax.
Use it on small shapes (tests); the fast paths never build a T×T tensor.
"""

from __future__ import annotations

import torch


def dense_masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed_TT: torch.Tensor
) -> torch.Tensor:
    """``softmax(q·kᵀ/√d, masked by allowed) @ v`` on (B, H, T, d); ``allowed_TT[i, j]`` says
    whether query i sees key j (every row needs at least one allowed key)."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return scores.masked_fill(~allowed_TT, float("-inf")).softmax(-1) @ v
