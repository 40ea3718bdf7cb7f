"""Pieces the Combiner kernels share: padding to whole blocks, masks, span pooling.

Shape names: B batch, H heads, T tokens, d head width, n blocks or rows, s block length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEG_INF = float("-inf")


def pad_T(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (B, H, T, d) along T to ``length`` (the padding is in everyone's future)."""
    extra = length - x.shape[2]
    return F.pad(x, (0, 0, 0, extra)) if extra else x


def grid(x: torch.Tensor, n: int, s: int) -> torch.Tensor:
    """(B, H, T, d) -> (B, H, n, s, d), zero-padded to n·s tokens."""
    B, H, _, d = x.shape
    return pad_T(x, n * s).reshape(B, H, n, s, d)


def tril(n: int, device: torch.device, diagonal: int = 0) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril(diagonal)


def pool_span(x: torch.Tensor, dim: int, pool: str) -> torch.Tensor:
    """Per-channel span summary: max (the paper's and code's default) or mean."""
    return x.amax(dim) if pool == "max" else x.mean(dim)


def prefix_pool(x: torch.Tensor, dim: int, pool: str, reverse: bool = False) -> torch.Tensor:
    """Running max/mean along ``dim`` (inclusive); ``reverse`` runs from the end (suffix)."""
    if reverse:
        x = x.flip(dim)
    if pool == "max":
        y = torch.cummax(x, dim).values
    else:
        n = x.shape[dim]
        shape = [1] * x.dim()
        shape[dim] = n
        count = torch.arange(1, n + 1, device=x.device, dtype=x.dtype).reshape(shape)
        y = x.cumsum(dim) / count
    return y.flip(dim) if reverse else y


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def row_lengths(T: int, m: int) -> list[int]:
    """Real tokens per block/row of length m: all full except perhaps the last."""
    n = ceil_div(T, m)
    return [m] * (n - 1) + [T - (n - 1) * m]
