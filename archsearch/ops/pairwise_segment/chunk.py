"""Blocked pairwise segment attention (docs/architectures.md, "LLP and ECP").

Each segment's queries attend ``[previous segment, own segment]`` through one fixed
``(own, prev + own)`` mask, batched over runs of equally shaped segments: O(T·m) work for
segments of ``m`` tokens, never a T×T mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segment_bounds(T: int, m: int, first: int) -> list[tuple[int, int]]:
    """[start, end) of each segment: [0, first), then segments of m, the last possibly shorter."""
    bounds, pos = [], 0
    f = min(first, T)
    if f:
        bounds.append((0, f))
        pos = f
    while pos < T:
        bounds.append((pos, min(pos + m, T)))
        pos += m
    return bounds


def _runs(T: int, m: int, first: int) -> list[tuple[int, int, int, int]]:
    """Runs ``(start, prev_len, own_len, count)`` of consecutive segments with equal shapes."""
    runs: list[tuple[int, int, int, int]] = []
    prev = 0
    for start, end in segment_bounds(T, m, first):
        own = end - start
        if runs and runs[-1][1:3] == (prev, own) and start == runs[-1][0] + runs[-1][3] * own:
            s, p, o, c = runs[-1]
            runs[-1] = (s, p, o, c + 1)
        else:
            runs.append((start, prev, own, 1))
        prev = own
    return runs


def pairwise_segment_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: int, first: int
) -> torch.Tensor:
    """(B, h, T, d) x3 -> (B, h, T, d): each segment sees the previous one and itself causally."""
    B, h, T, d = q.shape
    outs = []
    for start, prev, own, count in _runs(T, m, first):

        def blocks(t: torch.Tensor, lo: int, length: int, count: int = count) -> torch.Tensor:
            # segments are equally spaced by ``own`` (prev == own, or a single segment)
            return t[:, :, lo : lo + length * count].reshape(B, h * count, length, d)

        qb = blocks(q, start, own)
        if prev == 0:
            o = F.scaled_dot_product_attention(
                qb, blocks(k, start, own), blocks(v, start, own), is_causal=True
            )
        else:
            if count > 1:
                assert prev == own
            kb = torch.cat([blocks(k, start - prev, prev), blocks(k, start, own)], dim=2)
            vb = torch.cat([blocks(v, start - prev, prev), blocks(v, start, own)], dim=2)
            i = torch.arange(own, device=q.device)[:, None]
            j = torch.arange(prev + own, device=q.device)[None, :]
            mask = j <= i + prev  # whole previous segment, causal inside the own one
            o = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask)
        outs.append(o.reshape(B, h, own * count, d))
    return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]


def pairwise_pairs(T: int, m: int, first: int) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of :func:`pairwise_segment_attention`.

    exact: the allowed pairs; dense: every pair of a query with a key of its own or the previous
    segment (the score blocks as computed)."""
    exact = dense = 0
    for _, prev, own, count in _runs(T, m, first):
        exact += count * (own * prev + own * (own + 1) // 2)
        dense += count * own * (prev + own)
    return exact, dense
