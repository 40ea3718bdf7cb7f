"""Blocked attention kernels (archsearch.ops) against their dense masked references, and their
pair counts against the reference masks, on small float64 shapes with ragged edges."""

import pytest
import torch

from archsearch.ops.dense import segment_ids
from archsearch.ops.grouped import (
    grouped_causal_attention,
    grouped_mask,
    grouped_pairs,
    naive_grouped_causal_attention,
)
from archsearch.ops.pairwise_segment import (
    naive_pairwise_segment_attention,
    pairwise_pairs,
    pairwise_segment_attention,
    pairwise_segment_mask,
)
from archsearch.ops.sliding_window import (
    naive_sliding_window_attention,
    sliding_window_attention,
    sliding_window_pairs,
    window_mask,
)


def _qkv(T, B=2, H=3, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, d, generator=g, dtype=torch.float64) for _ in range(3)]


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# sliding window

WINDOW_CASES = [(T, W) for T in (1, 4, 5, 8, 13, 17, 24) for W in (1, 3, 4, 8, 30)]


@pytest.mark.parametrize(("T", "W"), WINDOW_CASES)
def test_sliding_window_matches_naive(T, W):
    q, k, v = _qkv(T)
    _close(sliding_window_attention(q, k, v, W), naive_sliding_window_attention(q, k, v, W))


@pytest.mark.parametrize(("T", "W"), WINDOW_CASES)
def test_sliding_window_pairs_count_the_mask(T, W):
    exact, dense = sliding_window_pairs(T, W)
    assert exact == int(window_mask(T, W).sum())
    # dense: each block of W queries scores its own block and the previous one (keys < T)
    blocks = [(s, min(s + W, T)) for s in range(0, T, W)]
    want = sum((e - s) * (e - max(s - W, 0)) for s, e in blocks) if T > W else T * T
    assert dense == want >= exact


def test_sliding_window_comparison_can_fail():
    q, k, v = _qkv(13)
    assert not torch.allclose(
        sliding_window_attention(q, k, v, 4), naive_sliding_window_attention(q, k, v, 5)
    )


# ---------------------------------------------------------------------------------------------
# grouped causal attention (S2-Attn's aligned and shifted groups)

GROUP_CASES = [
    (T, G, first)
    for T in (1, 2, 7, 16, 23)
    for G in (2, 4, 6)
    for first in sorted({0, 1, G // 2, G + 1})
]


@pytest.mark.parametrize(("T", "G", "first"), GROUP_CASES)
def test_grouped_matches_naive(T, G, first):
    q, k, v = _qkv(T)
    _close(
        grouped_causal_attention(q, k, v, G, first),
        naive_grouped_causal_attention(q, k, v, G, first),
    )


@pytest.mark.parametrize(("T", "G", "first"), GROUP_CASES)
def test_grouped_pairs_count_the_mask(T, G, first):
    exact, dense = grouped_pairs(T, G, first)
    assert exact == int(grouped_mask(T, G, first).sum())
    g = segment_ids(T, G, first)
    assert dense == int((g[:, None] == g[None, :]).sum())  # whole blocks, both triangles


def test_grouped_comparison_can_fail():
    q, k, v = _qkv(16)
    assert not torch.allclose(
        grouped_causal_attention(q, k, v, 4, 2), naive_grouped_causal_attention(q, k, v, 4, 0)
    )


# ---------------------------------------------------------------------------------------------
# pairwise segments (ECP; head_split's half of the heads uses first = m/2)

PAIRWISE_CASES = [
    (T, m, first)
    for T in (1, 3, 5, 12, 17, 24)
    for m in (1, 3, 4, 6)
    for first in sorted({m, max(m // 2, 1), 1})
]


@pytest.mark.parametrize(("T", "m", "first"), PAIRWISE_CASES)
def test_pairwise_segments_match_naive(T, m, first):
    q, k, v = _qkv(T)
    _close(
        pairwise_segment_attention(q, k, v, m, first),
        naive_pairwise_segment_attention(q, k, v, m, first),
    )


@pytest.mark.parametrize(("T", "m", "first"), PAIRWISE_CASES)
def test_pairwise_pairs_count_the_mask(T, m, first):
    exact, dense = pairwise_pairs(T, m, first)
    assert exact == int(pairwise_segment_mask(T, m, first).sum())
    g = segment_ids(T, m, first)
    near = (g[None, :] == g[:, None]) | (g[None, :] == g[:, None] - 1)
    assert dense == int(near.sum()) >= exact


def test_pairwise_comparison_can_fail():
    q, k, v = _qkv(12)
    assert not torch.allclose(
        pairwise_segment_attention(q, k, v, 4, 4), naive_pairwise_segment_attention(q, k, v, 4, 2)
    )
