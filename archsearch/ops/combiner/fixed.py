"""Combiner-Fixed (official JAX code ``_SelfAttSqrtn``; docs/architectures.md, "Combiner").

Block ``s``: a query's direct set is the causal part of its own block; every earlier block is one
span, summarised once by a pooled key ``k_Ω`` and its local expectation ``v̄_Ω`` (attention of the
block's pooled query over the block). Direct and span logits share ONE softmax per query.
Sequences are zero-padded to whole blocks; the padding only ever sits in the future of every real
query. The largest score tensor is ``(n, s, s + n)``; the last block's summary (which no query
uses) is not computed.

Dense dots (``P = n − 1``): ``2·n·s² + 2·P·s + 2·P²·s`` (in-block QK/PV, block summaries, span
QK/PV), ≈ ``2·T·(s + T/s)``; a dot is one d-wide product, ``2·d`` FLOPs.

Decoding (:func:`fixed_decode_step`) keeps the open block's K/V and running pooled query, plus one
``(k_Ω, v̄_Ω)`` per finished block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archsearch.ops.combiner._common import NEG_INF, ceil_div, grid, pool_span, tril


def fixed_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int, pool: str = "max"
) -> torch.Tensor:
    """Combiner-Fixed on (B, H, T, d) q, k and (B, H, T, dv) v; returns (B, H, T, dv)."""
    B, H, T, d = q.shape
    dv = v.shape[-1]
    s = min(block, T)
    n = ceil_div(T, s)
    q = q * d**-0.5
    qb, kb, vb = grid(q, n, s), grid(k, n, s), grid(v, n, s)
    local = (qb @ kb.transpose(-1, -2)).masked_fill(~tril(s, q.device), NEG_INF)  # (B,H,n,s,s)
    if n == 1:
        return (local.softmax(-1) @ vb).reshape(B, H, s, dv)[:, :, :T]
    P = n - 1
    # summaries of blocks 0..n-2 (the last block's summary is never used)
    q_sum = pool_span(qb[:, :, :P], 3, pool).unsqueeze(-2)  # (B,H,P,1,d)
    k_sum = pool_span(kb[:, :, :P], 3, pool)  # (B,H,P,d)
    a = (q_sum @ kb[:, :, :P].transpose(-1, -2)).softmax(-1)  # (B,H,P,1,s)
    v_sum = (a @ vb[:, :, :P]).squeeze(-2)  # (B,H,P,dv)
    # queries of blocks 1..n-1 against the summaries of blocks 0..n-2: block ρ+1 sees u <= ρ
    span = qb[:, :, 1:].reshape(B, H, P * s, d) @ k_sum.transpose(-1, -2)  # (B,H,P·s,P)
    span = span.reshape(B, H, P, s, P).masked_fill(~tril(P, q.device)[:, None, :], NEG_INF)
    span = torch.cat([span.new_full((B, H, 1, s, P), NEG_INF), span], dim=2)  # block 0: none
    w = torch.cat([local, span], dim=-1).softmax(-1)  # ONE softmax over direct + spans
    y = w[..., :s] @ vb  # (B,H,n,s,dv)
    y_span = w[:, :, 1:, :, s:].reshape(B, H, P * s, P) @ v_sum  # (B,H,P·s,dv)
    y = torch.cat([y[:, :, :1], y[:, :, 1:] + y_span.reshape(B, H, P, s, dv)], dim=2)
    return y.reshape(B, H, n * s, dv)[:, :, :T]


def fixed_dots(T: int, block: int) -> tuple[int, int]:
    """(exact, dense) dots per head of :func:`fixed_attention` (a dot = 2·d FLOPs)."""
    s = min(block, T)
    n = ceil_div(T, s)
    P = n - 1
    t = T - P * s  # real tokens in the last block
    dense = 2 * n * s * s + (2 * P * s + 2 * P * P * s if P else 0)
    direct = P * s * (s + 1) // 2 + t * (t + 1) // 2  # Σ_i (i mod s) + 1
    spans = s * P * (P - 1) // 2 + P * t  # Σ_i ⌊i/s⌋
    exact = 2 * direct + 2 * spans + 2 * P * s  # every summary of blocks 0..n-2 is used
    return exact, dense


@dataclass
class FixedDecodeState:
    """What Combiner-Fixed holds between :func:`fixed_decode_step` calls (per layer).

    ``block``: the block length s it decodes with (``block_size`` resolved for ``max_len``);
    ``k_blk``/``v_blk``: (B, H, r, d) keys/values of the open block (r < s tokens);
    ``q_pool``: (B, H, 1, d) running max (or sum, for mean pooling) of its scaled queries;
    ``k_sum``/``v_sum``: (B, H, n_done, d) pooled key and local expectation of each finished block.
    """

    pos: int
    block: int
    k_blk: torch.Tensor
    v_blk: torch.Tensor
    q_pool: torch.Tensor | None
    k_sum: torch.Tensor
    v_sum: torch.Tensor


def fixed_decode_init(
    batch: int, heads: int, head_dim: int, block: int, dtype: torch.dtype, device: torch.device
) -> FixedDecodeState:
    """The state before the first token: nothing held; it grows by one pooled key and one
    summary per finished block, so it needs no pre-allocation."""
    empty = torch.zeros(batch, heads, 0, head_dim, dtype=dtype, device=device)
    return FixedDecodeState(0, block, empty, empty, None, empty, empty)


def fixed_decode_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: FixedDecodeState, pool: str = "max"
) -> tuple[torch.Tensor, FixedDecodeState]:
    """One token's (B, H, 1, d) q, k, v (q not yet scaled) at position ``state.pos``; returns its
    (B, H, 1, d) output, equal to :func:`fixed_attention` there, and the new state."""
    s = state.block
    q = q * q.shape[-1] ** -0.5
    k_blk = torch.cat([state.k_blk, k], dim=2)
    v_blk = torch.cat([state.v_blk, v], dim=2)
    if state.q_pool is None:
        q_pool = q
    else:
        q_pool = torch.maximum(state.q_pool, q) if pool == "max" else state.q_pool + q
    # one softmax over the open block (all of it is <= pos) and the finished blocks
    logits = torch.cat([q @ k_blk.transpose(-1, -2), q @ state.k_sum.transpose(-1, -2)], dim=-1)
    w = logits.softmax(-1)
    r = k_blk.shape[2]
    y = w[..., :r] @ v_blk + w[..., r:] @ state.v_sum  # (B,H,1,d)
    k_sum, v_sum = state.k_sum, state.v_sum
    if r == s:  # the block is complete: keep its summary, drop its keys and values
        q_sum = q_pool if pool == "max" else q_pool / s
        a = (q_sum @ k_blk.transpose(-1, -2)).softmax(-1)
        k_sum = torch.cat([k_sum, pool_span(k_blk, 2, pool).unsqueeze(2)], dim=2)
        v_sum = torch.cat([v_sum, a @ v_blk], dim=2)
        k_blk, v_blk, q_pool = k_blk[:, :, :0], v_blk[:, :, :0], None
    return y, FixedDecodeState(state.pos + 1, s, k_blk, v_blk, q_pool, k_sum, v_sum)
