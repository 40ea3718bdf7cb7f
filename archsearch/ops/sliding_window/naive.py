"""Dense reference of sliding-window attention: the T×T window mask, one softmax per query."""

from __future__ import annotations

import torch

from archsearch.ops.dense import dense_masked_attention


def window_mask(T: int, window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) bool: query i sees key j iff ``i − window < j ≤ i``."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & (j > i - window)


def naive_sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int
) -> torch.Tensor:
    """(B, H, T, d) x3 -> (B, H, T, d), computed over the whole T×T score matrix."""
    return dense_masked_attention(q, k, v, window_mask(q.shape[2], window, q.device))
