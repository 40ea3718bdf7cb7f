"""Combiner-Logsparse (official JAX code ``_SelfAttLogn``; docs/architectures.md, "Combiner").

Direct: ``{i}`` and, for odd ``i``, ``{i−1}`` (causal attention inside aligned pairs). For each
level ``l ≥ 1`` whose bit is set in ``i``, the aligned span ``[(⌊i/2^l⌋−1)·2^l, ⌊i/2^l⌋·2^l)``:
the Fenwick (binary) decomposition of ``[0, i)``, at most ``⌈log2 T⌉`` spans
(:func:`logsparse_spans`). One softmax per query over direct and span logits; the largest score
tensor is ``(T, ⌈log2 T⌉ + 1)``.

Dense dots: ``4·T₀ + Σ_{l=1}^{K−1} 2·T_l`` with ``T₀ = 2⌈T/2⌉``, ``T_l = 2^{l+1}⌈T/2^{l+1}⌉``,
``K = ⌈log2 T⌉`` (pairs block, then per level the even-block summaries and the odd-block span
terms) ≈ ``2·T·log2 T``: only the queries whose bit is set compute a level term and only even
blocks get a summary.
"""

from __future__ import annotations

import torch

from archsearch.ops.combiner._common import NEG_INF, ceil_div, grid, pad_T, pool_span, tril


def logsparse_levels(T: int) -> int:
    """K = ⌈log2 T⌉: levels 0..K-1 cover every position < T (0 for T = 1)."""
    return (int(T) - 1).bit_length()  # int(): a 0-d tensor under JIT tracing (fvcore)


def logsparse_spans(i: int) -> list[tuple[int, int]]:
    """Spans ``[start, end)`` of query ``i``: one aligned block of 2^l per set bit l of i.

    Level 0 is the single token i−1 (attended directly in the kernel). The spans are the
    Fenwick decomposition of [0, i): disjoint and covering it.
    """
    spans = []
    for l in range(i.bit_length()):
        if (i >> l) & 1:
            c = 1 << l
            spans.append(((i // c - 1) * c, (i // c) * c))
    return spans


def logsparse_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pool: str = "max"
) -> torch.Tensor:
    """Combiner-Logsparse on (B, H, T, d) q, k and (B, H, T, dv) v; returns (B, H, T, dv)."""
    B, H, T, d = q.shape
    dv = v.shape[-1]
    q = q * d**-0.5
    # direct: i itself and, for odd i, i-1 = causal attention inside aligned pairs
    n0 = ceil_div(T, 2)
    q0, k0, v0 = grid(q, n0, 2), grid(k, n0, 2), grid(v, n0, 2)
    pair = (q0 @ k0.transpose(-1, -2)).masked_fill(~tril(2, q.device), NEG_INF)  # (B,H,n0,2,2)
    logits = [pair.reshape(B, H, 2 * n0, 2)[:, :, :T]]
    summaries = []
    for l in range(1, logsparse_levels(T)):
        c = 1 << l
        n_l = ceil_div(T, 2 * c)  # aligned (even, odd) block pairs of this level
        ql = grid(q, 2 * n_l, c).reshape(B, H, n_l, 2, c, d)
        kl = grid(k, 2 * n_l, c).reshape(B, H, n_l, 2, c, d)
        vl = grid(v, 2 * n_l, c).reshape(B, H, n_l, 2, c, dv)
        k_even = kl[:, :, :, 0]  # (B,H,n_l,c,d): the spans of this level
        q_sum = pool_span(ql[:, :, :, 0], 3, pool).unsqueeze(-2)  # (B,H,n_l,1,d)
        k_sum = pool_span(k_even, 3, pool).unsqueeze(-1)  # (B,H,n_l,d,1)
        a = (q_sum @ k_even.transpose(-1, -2)).softmax(-1)  # (B,H,n_l,1,c)
        summaries.append(a @ vl[:, :, :, 0])  # (B,H,n_l,1,dv)
        # bit l of i is set exactly in odd blocks; they see the even block before them
        odd = ql[:, :, :, 1] @ k_sum  # (B,H,n_l,c,1)
        lg = torch.stack([torch.full_like(odd, NEG_INF), odd], dim=3)  # (B,H,n_l,2,c,1)
        logits.append(lg.reshape(B, H, 2 * n_l * c, 1)[:, :, :T])
    w = torch.cat(logits, dim=-1).softmax(-1)  # (B,H,T,K+1): ONE softmax per query
    w0 = pad_T(w[..., :2], 2 * n0).reshape(B, H, n0, 2, 2)
    y = (w0 @ v0).reshape(B, H, 2 * n0, dv)[:, :, :T]
    for l, v_sum in enumerate(summaries, start=1):
        c = 1 << l
        n_l = v_sum.shape[2]
        wl = pad_T(w[..., 1 + l : 2 + l], 2 * n_l * c).reshape(B, H, n_l, 2, c, 1)
        yl = wl[:, :, :, 1] @ v_sum  # (B,H,n_l,c,dv)
        yl = torch.stack([torch.zeros_like(yl), yl], dim=3).reshape(B, H, 2 * n_l * c, dv)
        y = y + yl[:, :, :T]
    return y


def logsparse_dots(T: int) -> tuple[int, int]:
    """(exact, dense) dots per head of :func:`logsparse_attention`."""
    T0 = 2 * ceil_div(T, 2)
    dense = 4 * T0
    exact = 2 * (T + T // 2)  # self, and i-1 for odd i
    for l in range(1, logsparse_levels(T)):
        c = 1 << l
        dense += 2 * (2 * c * ceil_div(T, 2 * c))  # summaries (T_l/2 QK + PV), terms (same)
        with_bit = (T // (2 * c)) * c + max(0, T % (2 * c) - c)  # queries i < T with bit l set
        used = (T - 1 - c) // (2 * c) + 1  # even blocks a with (2a+1)·c < T (c < T here)
        exact += 2 * with_bit + 2 * c * used
    return exact, dense
