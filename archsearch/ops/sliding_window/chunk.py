"""Blocked sliding-window attention (docs/architectures.md, "Sliding-window attention").

Blocks of ``window`` queries attend their own block and the previous one through one fixed
``(window, 2·window)`` mask, so work and memory are O(T·window) and ``scaled_dot_product_attention``
never sees a T×T mask (what a FLOP counter sees is what :func:`sliding_window_pairs` says).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _window_mask(n_q: int, window: int, device: torch.device) -> torch.Tensor:
    # query i sits at key index i + window; it sees keys j with i < j <= i + window
    i = torch.arange(n_q, device=device)[:, None]
    j = torch.arange(n_q + window, device=device)[None, :]
    return (j > i) & (j <= i + window)


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int
) -> torch.Tensor:
    """Each query sees itself and the ``window - 1`` keys before it; blocks of ``window`` queries
    attend their own block and the previous one, so the work is O(T·window)."""
    B, h, T, d = q.shape
    W = window
    if T <= W:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # // and %, not divmod: under JIT tracing (fvcore) sizes are 0-d tensors, which lack divmod
    n, r = T // W, T % W
    outs = [F.scaled_dot_product_attention(q[:, :, :W], k[:, :, :W], v[:, :, :W], is_causal=True)]
    if n > 1:
        qb = q[:, :, W : n * W].reshape(B, h * (n - 1), W, d)

        def two_blocks(t: torch.Tensor) -> torch.Tensor:
            prev = t[:, :, : (n - 1) * W].reshape(B, h, n - 1, W, d)
            cur = t[:, :, W : n * W].reshape(B, h, n - 1, W, d)
            return torch.cat([prev, cur], dim=3).reshape(B, h * (n - 1), 2 * W, d)

        mask = _window_mask(W, W, q.device)
        o = F.scaled_dot_product_attention(qb, two_blocks(k), two_blocks(v), attn_mask=mask)
        outs.append(o.reshape(B, h, (n - 1) * W, d))
    if r:
        lo = n * W - W
        mask = _window_mask(r, W, q.device)
        o = F.scaled_dot_product_attention(
            q[:, :, n * W :], k[:, :, lo:], v[:, :, lo:], attn_mask=mask
        )
        outs.append(o)
    return torch.cat(outs, dim=2)


def sliding_window_pairs(T: int, window: int) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of :func:`sliding_window_attention`.

    exact: the allowed pairs, ``Σ_i min(i + 1, W)``; dense: the score blocks as computed,
    ``W² + (n−1)·2W² + r·(W + r)`` for ``T = n·W + r > W`` (``T²`` for ``T ≤ W``)."""
    W = window
    if T <= W:
        return T * (T + 1) // 2, T * T
    # exact: position i sees min(i + 1, W) keys
    exact = W * (W + 1) // 2 + (T - W) * W
    n, r = divmod(T, W)
    dense = W * W + (n - 1) * W * 2 * W + r * (W + r)
    return exact, dense
