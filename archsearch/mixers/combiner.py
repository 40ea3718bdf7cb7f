"""Combiner (Ren, Dai, Dai, Yang, Leskovec, Schuurmans, Dai; NeurIPS 2021, arXiv 2107.05768).

Full-support causal attention at sub-quadratic cost (architectures.md §5). Every query ``i`` scores
a small *direct* set exactly and the rest of its past as a few *spans*; a span ``Ω`` enters the
query's softmax once, through a pooled key ``k_Ω``, and brings its *local expectation*
``v̄_Ω = Σ_{j∈Ω} softmax_j(q_Ω·k_j/√d) v_j`` (``q_Ω``, ``k_Ω``: pooled over Ω, ``pool`` = max or
mean). Direct and span logits share **one** softmax per query, so the effective distribution
``q(j|i)`` is positive on every ``j ≤ i``, zero on ``j > i``, and sums to 1. Summaries are computed
once per span and shared by every query that uses it; for queries sharing a span the attention
sub-matrix over that span has rank 1. Positions are 0-indexed; ``s``/``m`` are clamped to ``T``.

``block_size`` is ``s`` or ``m``: a positive int, or ``"sqrt"`` for ``s = m = max(1, ⌊√T⌋)`` at
every sequence length ``T`` (the paper's choice; O(T^1.5·D) core work at any ``T``). One helper,
:meth:`CombinerAttention.Config.block_len`, resolves it wherever the block is needed. With
``"sqrt"`` the block of a forward call depends on the call's length, so the output at ``i`` of a
length-``T`` call depends on ``T`` (never on tokens after ``i``); the decoder of variant fixed
uses the block of the length it is made for (``max_len``, else ``ctx.max_seq_len``).

Variants (``variant``; official JAX code ``google-research/combiner/jax/model/layer.py``):

* ``fixed`` (``_SelfAttSqrtn``), block ``s``: direct = the causal part of the query's own block;
  one span per earlier block. Only fixed has incremental decoding (:meth:`init_state`,
  :meth:`step`): the open block's K/V and running pooled query, plus one ``(k_Ω, v̄_Ω)`` per
  finished block.
* ``logsparse`` (``_SelfAttLogn``): direct = ``{i}`` and, for odd ``i``, ``{i−1}`` (the level-0
  span of one token, i.e. causal attention inside aligned pairs); for each level ``l ≥ 1`` whose
  bit is set in ``i``, the aligned span ``[(⌊i/2^l⌋−1)·2^l, ⌊i/2^l⌋·2^l)``: the Fenwick (binary)
  decomposition of ``[0, i)``, at most ``⌈log2 T⌉`` spans (:func:`logsparse_spans`).
* ``axial`` (``_SelfAttAxialRowmajor``), row-major, row length ``m``: direct = the query's own row
  up to itself; one span per earlier row. The summary of row ``r'`` seen from column ``c`` is the
  row's *bidirectional* attention output at ``(r', c)`` (legal: the row is wholly in the past),
  and its key ``k̃[r', c]`` is set by ``row_summary`` (TF ``row_summary``): ``proj`` (JAX default)
  ``W_k2·LN(x[r',c] + W_p·concat_heads(v̄[r',c]))``; ``wsum`` the row-attention-weighted sum of
  keys; ``wsum_proj`` that sum through the ``proj`` pipeline; ``none`` the raw key ``k[r', c]``.
  RoPE (when on) rotates the projected keys at position ``(r', c)``. The in-row ``QKᵀ`` serves
  both the direct logits (masked) and the row summaries (unmasked).
* ``mixture`` (``_AxialMixtureAtt`` / TF ``axial_mixture_unidir``), row length ``m``: direct = own
  column above (rows ``< r``) and own row up to itself; spans: *vertical* (each other column,
  rows ``< r``: prefix-pooled key, value from causal column attention with a prefix-pooled query),
  *top-left* (each earlier row, columns ``< c``: prefix pooling) and *top-right* (each earlier
  row, columns ``> c``: suffix pooling). Rows ``< r`` × columns ``≠ c`` are covered by both the
  vertical and the horizontal plan. ``mixture = "joint"`` (default) is the official code: one
  softmax over all five groups, so the learned logits mix the two plans. ``mixture = "average"``
  is the paper's §3.3 form ``A_i = ½(A_i(vertical) + A_i(horizontal))``: two softmaxes, one over
  [direct, vertical], one over [direct, top-left, top-right], averaged; same matmuls, same FLOPs.
  (The TF port replaces cummax by cumsum; we use true prefix max / prefix mean.)

Any ``T`` works: sequences are padded to whole blocks/rows with zeros. Padding only ever sits in
the future of every real query (the last block/row), so it is masked out of every real output and
equals a partial last block; work stays blocked. Nothing builds a T×T tensor: the largest score
tensors are ``(n, s, s + n)`` (fixed, axial), ``(n, m, 3n + 2m)`` (mixture) and ``(T, ⌈log2 T⌉+1)``
(logsparse). The direct/span masks are ``-inf`` fills, so the future gets exactly zero weight and
exactly zero gradient; summaries that no query uses (of the last block/row) are not computed.

Cost per layer (FLOPs for one sequence; a multiply-add = 2). Projections ``8·T·D²``, plus
``4·D²·(n−1)·m`` for the ``proj``/``wsum_proj`` summary keys of axial. Core = ``2·D`` per *dot*
(one ``d``-wide ``q·k`` or one weight × value row; a scored pair is two dots, the ``4·D`` per
pair of README "FLOP convention"). Dense dots (what the code computes, ``n`` = blocks/rows,
``P = n − 1``):

* fixed: ``2·n·s² + 2·P·s + 2·P²·s`` (in-block QK/PV, block summaries, span QK/PV)
  ≈ ``2·T·(s + T/s)``: at ``s = √T`` the core is ≈ ``8·D·T^1.5``;
* logsparse: ``4·T₀ + Σ_{l=1}^{K−1} 2·T_l`` with ``T₀ = 2⌈T/2⌉``, ``T_l = 2^{l+1}⌈T/2^{l+1}⌉``,
  ``K = ⌈log2 T⌉`` (pairs block, then per level the even-block summaries and the odd-block span
  terms) ≈ ``2·T·log2 T``: core ≈ ``4·D·T·log2 T``, half the spec's ``8·D·T·log2 T`` because only
  the queries whose bit is set compute a level term and only even blocks get a summary;
* axial: ``2·n·m² + P·m² (+ P·m² for wsum) + 2·m·P²`` (in-row QK and direct PV, row-summary PV,
  [weighted key sum], global QK/PV per column) ≈ ``3·T·m + 2·T·n``;
* mixture: ``2·n·m² + 2·m·P²`` (own row, own column) ``+ 2·m·P² + 2·P·m²`` (vertical summaries,
  vertical terms) ``+ 2·[2·P·(m−1)² + 2·(m−1)·P²]`` (top-left and top-right summaries and terms)
  ≈ ``8·T·(m + n)``: core ≈ ``16·D·T·(m + n)``, ``32·D·T^1.5`` at ``m = √T``.

Exact dots count only what a block-sparse kernel needs for the real tokens: unmasked direct and
span terms and the summaries some query uses (closed forms in the ``*_dots`` functions, checked
by enumeration in the tests). Pooling (max/mean over a span, prefix max/mean) is O(T·D)
elementwise work and, like softmax, masking, LayerNorm and RoPE, is not counted.

Shape suffixes/names: B batch, H heads, T tokens, d head width, n blocks or rows, s block length,
m row length, P = n − 1 (blocks/rows that have a predecessor), c a column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import require
from archsearch.mixers._attention import AttentionConfig, AttentionMixer
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops
from archsearch.mixers._registry import register_mixer

NEG_INF = float("-inf")

Variant = Literal["fixed", "logsparse", "axial", "mixture"]
Pool = Literal["max", "mean"]
RowSummary = Literal["proj", "wsum", "wsum_proj", "none"]
MixtureMode = Literal["joint", "average"]
BlockSize = int | Literal["sqrt"]

_DEFAULT_BLOCK = 128

#: axial projected summary keys: (weighted key sum or None, v̄) -> keys, all (B, H, n−1, m, d)
KeyFn = Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# small helpers


def _pad_T(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (B, H, T, d) along T to ``length`` (the padding is in everyone's future)."""
    extra = length - x.shape[2]
    return F.pad(x, (0, 0, 0, extra)) if extra else x


def _grid(x: torch.Tensor, n: int, s: int) -> torch.Tensor:
    """(B, H, T, d) -> (B, H, n, s, d), zero-padded to n·s tokens."""
    B, H, _, d = x.shape
    return _pad_T(x, n * s).reshape(B, H, n, s, d)


def _tril(n: int, device: torch.device, diagonal: int = 0) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril(diagonal)


def _pool(x: torch.Tensor, dim: int, pool: str) -> torch.Tensor:
    """Per-channel span summary: max (the paper's and code's default) or mean."""
    return x.amax(dim) if pool == "max" else x.mean(dim)


def _prefix_pool(x: torch.Tensor, dim: int, pool: str, reverse: bool = False) -> torch.Tensor:
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


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _rows(T: int, m: int) -> list[int]:
    """Real tokens per block/row of length m: all full except perhaps the last."""
    n = _ceil_div(T, m)
    return [m] * (n - 1) + [T - (n - 1) * m]


# ---------------------------------------------------------------------------------------------
# Combiner-Fixed


def fixed_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int, pool: str = "max"
) -> torch.Tensor:
    """Combiner-Fixed on (B, H, T, d) q, k and (B, H, T, dv) v; returns (B, H, T, dv)."""
    B, H, T, d = q.shape
    dv = v.shape[-1]
    s = min(block, T)
    n = _ceil_div(T, s)
    q = q * d**-0.5
    qb, kb, vb = _grid(q, n, s), _grid(k, n, s), _grid(v, n, s)
    local = (qb @ kb.transpose(-1, -2)).masked_fill(~_tril(s, q.device), NEG_INF)  # (B,H,n,s,s)
    if n == 1:
        return (local.softmax(-1) @ vb).reshape(B, H, s, dv)[:, :, :T]
    P = n - 1
    # summaries of blocks 0..n-2 (the last block's summary is never used)
    q_sum = _pool(qb[:, :, :P], 3, pool).unsqueeze(-2)  # (B,H,P,1,d)
    k_sum = _pool(kb[:, :, :P], 3, pool)  # (B,H,P,d)
    a = (q_sum @ kb[:, :, :P].transpose(-1, -2)).softmax(-1)  # (B,H,P,1,s)
    v_sum = (a @ vb[:, :, :P]).squeeze(-2)  # (B,H,P,dv)
    # queries of blocks 1..n-1 against the summaries of blocks 0..n-2: block ρ+1 sees u <= ρ
    span = qb[:, :, 1:].reshape(B, H, P * s, d) @ k_sum.transpose(-1, -2)  # (B,H,P·s,P)
    span = span.reshape(B, H, P, s, P).masked_fill(~_tril(P, q.device)[:, None, :], NEG_INF)
    span = torch.cat([span.new_full((B, H, 1, s, P), NEG_INF), span], dim=2)  # block 0: none
    w = torch.cat([local, span], dim=-1).softmax(-1)  # ONE softmax over direct + spans
    y = w[..., :s] @ vb  # (B,H,n,s,dv)
    y_span = w[:, :, 1:, :, s:].reshape(B, H, P * s, P) @ v_sum  # (B,H,P·s,dv)
    y = torch.cat([y[:, :, :1], y[:, :, 1:] + y_span.reshape(B, H, P, s, dv)], dim=2)
    return y.reshape(B, H, n * s, dv)[:, :, :T]


def fixed_dots(T: int, block: int) -> tuple[int, int]:
    """(exact, dense) dots per head of :func:`fixed_attention` (a dot = 2·d FLOPs)."""
    s = min(block, T)
    n = _ceil_div(T, s)
    P = n - 1
    t = T - P * s  # real tokens in the last block
    dense = 2 * n * s * s + (2 * P * s + 2 * P * P * s if P else 0)
    direct = P * s * (s + 1) // 2 + t * (t + 1) // 2  # Σ_i (i mod s) + 1
    spans = s * P * (P - 1) // 2 + P * t  # Σ_i ⌊i/s⌋
    exact = 2 * direct + 2 * spans + 2 * P * s  # every summary of blocks 0..n-2 is used
    return exact, dense


# ---------------------------------------------------------------------------------------------
# Combiner-Logsparse


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
    n0 = _ceil_div(T, 2)
    q0, k0, v0 = _grid(q, n0, 2), _grid(k, n0, 2), _grid(v, n0, 2)
    pair = (q0 @ k0.transpose(-1, -2)).masked_fill(~_tril(2, q.device), NEG_INF)  # (B,H,n0,2,2)
    logits = [pair.reshape(B, H, 2 * n0, 2)[:, :, :T]]
    summaries = []
    for l in range(1, logsparse_levels(T)):
        c = 1 << l
        n_l = _ceil_div(T, 2 * c)  # aligned (even, odd) block pairs of this level
        ql = _grid(q, 2 * n_l, c).reshape(B, H, n_l, 2, c, d)
        kl = _grid(k, 2 * n_l, c).reshape(B, H, n_l, 2, c, d)
        vl = _grid(v, 2 * n_l, c).reshape(B, H, n_l, 2, c, dv)
        k_even = kl[:, :, :, 0]  # (B,H,n_l,c,d): the spans of this level
        q_sum = _pool(ql[:, :, :, 0], 3, pool).unsqueeze(-2)  # (B,H,n_l,1,d)
        k_sum = _pool(k_even, 3, pool).unsqueeze(-1)  # (B,H,n_l,d,1)
        a = (q_sum @ k_even.transpose(-1, -2)).softmax(-1)  # (B,H,n_l,1,c)
        summaries.append(a @ vl[:, :, :, 0])  # (B,H,n_l,1,dv)
        # bit l of i is set exactly in odd blocks; they see the even block before them
        odd = ql[:, :, :, 1] @ k_sum  # (B,H,n_l,c,1)
        lg = torch.stack([torch.full_like(odd, NEG_INF), odd], dim=3)  # (B,H,n_l,2,c,1)
        logits.append(lg.reshape(B, H, 2 * n_l * c, 1)[:, :, :T])
    w = torch.cat(logits, dim=-1).softmax(-1)  # (B,H,T,K+1): ONE softmax per query
    w0 = _pad_T(w[..., :2], 2 * n0).reshape(B, H, n0, 2, 2)
    y = (w0 @ v0).reshape(B, H, 2 * n0, dv)[:, :, :T]
    for l, v_sum in enumerate(summaries, start=1):
        c = 1 << l
        n_l = v_sum.shape[2]
        wl = _pad_T(w[..., 1 + l : 2 + l], 2 * n_l * c).reshape(B, H, n_l, 2, c, 1)
        yl = wl[:, :, :, 1] @ v_sum  # (B,H,n_l,c,dv)
        yl = torch.stack([torch.zeros_like(yl), yl], dim=3).reshape(B, H, 2 * n_l * c, dv)
        y = y + yl[:, :, :T]
    return y


def logsparse_dots(T: int) -> tuple[int, int]:
    """(exact, dense) dots per head of :func:`logsparse_attention`."""
    T0 = 2 * _ceil_div(T, 2)
    dense = 4 * T0
    exact = 2 * (T + T // 2)  # self, and i-1 for odd i
    for l in range(1, logsparse_levels(T)):
        c = 1 << l
        dense += 2 * (2 * c * _ceil_div(T, 2 * c))  # summaries (T_l/2 QK + PV), terms (same)
        with_bit = (T // (2 * c)) * c + max(0, T % (2 * c) - c)  # queries i < T with bit l set
        used = (T - 1 - c) // (2 * c) + 1  # even blocks a with (2a+1)·c < T (c < T here)
        exact += 2 * with_bit + 2 * c * used
    return exact, dense


# ---------------------------------------------------------------------------------------------
# Combiner-Axial (row-major)


def axial_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    row: int,
    summary_keys: str | torch.Tensor = "none",
    key_fn: KeyFn | None = None,
) -> torch.Tensor:
    """Combiner-Axial (row-major) on (B, H, T, d) q, k and (B, H, T, dv) v.

    ``summary_keys`` is the key of row r' seen from column c (TF ``row_summary``): ``"none"`` the
    raw key ``k[r', c]``; ``"wsum"`` the row-attention-weighted key sum; ``"proj"`` and
    ``"wsum_proj"`` ``key_fn(k_wsum or None, v̄)`` (the module's W_p, LayerNorm and W_k2). A
    (B, H, n−1, m, d) tensor is used as the keys as it is (the tests read q(j|i) off that way).
    """
    B, H, T, d = q.shape
    dv = v.shape[-1]
    m = min(row, T)
    n = _ceil_div(T, m)
    q = q * d**-0.5
    qg, kg, vg = _grid(q, n, m), _grid(k, n, m), _grid(v, n, m)
    scores = qg @ kg.transpose(-1, -2)  # (B,H,n,m,m), shared by direct logits and row summaries
    direct = scores.masked_fill(~_tril(m, q.device), NEG_INF)
    if n == 1:
        return (direct.softmax(-1) @ vg).reshape(B, H, m, dv)[:, :, :T]
    P = n - 1
    probs = scores[:, :, :P].softmax(-1)  # bidirectional inside each earlier row
    v_bar = probs @ vg[:, :, :P]  # (B,H,P,m,dv): summary of row r' as seen from column c
    if isinstance(summary_keys, torch.Tensor):
        k_bar = summary_keys
    elif summary_keys == "none":
        k_bar = kg[:, :, :P]
    else:
        k_wsum = probs @ kg[:, :, :P] if summary_keys.startswith("wsum") else None
        if summary_keys == "wsum":
            k_bar = k_wsum
        elif key_fn is None:
            raise ValueError(f"summary_keys={summary_keys!r} needs key_fn (the projection)")
        else:
            k_bar = key_fn(k_wsum, v_bar)
    # per column c: query rows 1..n-1 against the summaries of rows 0..n-2 (row ρ+1 sees u <= ρ)
    q_col = qg[:, :, 1:].transpose(2, 3)  # (B,H,m,P,d)
    glob = q_col @ k_bar.transpose(2, 3).transpose(-1, -2)  # (B,H,m,P,P)
    glob = glob.masked_fill(~_tril(P, q.device), NEG_INF).transpose(2, 3)  # (B,H,P,m,P)
    glob = torch.cat([glob.new_full((B, H, 1, m, P), NEG_INF), glob], dim=2)  # row 0: none
    w = torch.cat([direct, glob], dim=-1).softmax(-1)  # (B,H,n,m,m+P): ONE softmax
    y = w[..., :m] @ vg
    w_glob = w[:, :, 1:, :, m:].transpose(2, 3)  # (B,H,m,P,P)
    y_glob = (w_glob @ v_bar.transpose(2, 3)).transpose(2, 3)  # (B,H,P,m,dv)
    y = torch.cat([y[:, :, :1], y[:, :, 1:] + y_glob], dim=2)
    return y.reshape(B, H, n * m, dv)[:, :, :T]


def axial_dots(T: int, row: int, wsum: bool = False) -> tuple[int, int]:
    """(exact, dense) dots per head of :func:`axial_attention` (``wsum``: weighted key sums)."""
    m = min(row, T)
    t = _rows(T, m)
    n = len(t)
    P = n - 1
    dense = 2 * n * m * m + ((1 + wsum) * P * m * m + 2 * m * P * P if P else 0)
    exact = 0
    for r, tr in enumerate(t):
        u = t[r + 1] if r < P else 0  # columns whose summary of this row some query uses
        exact += u * m + (tr * (tr + 1) - u * (u + 1)) // 2  # in-row QK actually needed
        exact += tr * (tr + 1) // 2  # direct PV
        exact += (1 + wsum) * u * m  # summary PV (and the weighted key sum)
        exact += 2 * r * tr  # global QK + PV: r earlier rows per query
    return exact, dense


# ---------------------------------------------------------------------------------------------
# Combiner-Mixture (official code: joint softmax; optionally the paper's average of two plans)


def mixture_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    row: int,
    pool: str = "max",
    average: bool = False,
) -> torch.Tensor:
    """Combiner-Mixture on (B, H, T, d) q, k and (B, H, T, dv) v; returns (B, H, T, dv)."""
    B, H, T, d = q.shape
    dv = v.shape[-1]
    m = min(row, T)
    n = _ceil_div(T, m)
    q = q * d**-0.5
    qg, kg, vg = _grid(q, n, m), _grid(k, n, m), _grid(v, n, m)
    own_row = (qg @ kg.transpose(-1, -2)).masked_fill(~_tril(m, q.device), NEG_INF)
    if n == 1:
        return (own_row.softmax(-1) @ vg).reshape(B, H, m, dv)[:, :, :T]
    P = n - 1
    tri = ~_tril(P, q.device)  # column-major (.., query row ρ+1, key row u): masked where u > ρ

    def col_major(x: torch.Tensor) -> torch.Tensor:  # (B,H,rows,cols,*) <-> (B,H,cols,rows,*)
        return x.transpose(2, 3)

    q_now = qg[:, :, 1:]  # queries that have earlier rows: (B,H,P,m,d)
    q_past, k_past, v_past = qg[:, :, :P], kg[:, :, :P], vg[:, :, :P]
    # 1. own column, rows < r (direct)
    own_col = col_major(q_now) @ col_major(k_past).transpose(-1, -2)  # (B,H,m,P,P)
    groups = {"col": col_major(own_col.masked_fill(tri, NEG_INF))}  # (B,H,P,m,P)
    values = {}
    if m > 1:
        # 3. vertical spans: column c' rows <= ρ, seen by row ρ+1 from every column c != c'
        q_pre = _prefix_pool(col_major(q_past), 3, pool)  # (B,H,m,P,d)
        a = (q_pre @ col_major(k_past).transpose(-1, -2)).masked_fill(tri, NEG_INF).softmax(-1)
        values["vert"] = col_major(a @ col_major(v_past))  # (B,H,P,m,dv): [ρ, c']
        k_vert = _prefix_pool(k_past, 2, pool)  # (B,H,P,m,d): [ρ, c'] pooled over rows <= ρ
        vert = q_now @ k_vert.transpose(-1, -2)  # (B,H,P,m,m)
        eye = torch.eye(m, dtype=torch.bool, device=q.device)
        groups["vert"] = vert.masked_fill(eye, NEG_INF)  # c' = c is the own column (direct)
        # 4. top-left spans: row r' < r, columns < c (prefix pooling along the row)
        causal = ~_tril(m - 1, q.device)
        q_l = _prefix_pool(q_past[:, :, :, :-1], 3, pool)
        a = (q_l @ k_past[:, :, :, :-1].transpose(-1, -2)).masked_fill(causal, NEG_INF)
        values["left"] = a.softmax(-1) @ v_past[:, :, :, :-1]  # [r', c-1]: columns <= c-1
        k_l = _prefix_pool(k_past[:, :, :, :-1], 3, pool)  # (B,H,P,m-1,d)
        left = col_major(q_now[:, :, :, 1:]) @ col_major(k_l).transpose(-1, -2)  # (B,H,m-1,P,P)
        left = col_major(left.masked_fill(tri, NEG_INF))  # (B,H,P,m-1,P)
        groups["left"] = torch.cat([left.new_full((B, H, P, 1, P), NEG_INF), left], dim=3)
        # 5. top-right spans: row r' < r, columns > c (suffix pooling along the row)
        q_r = _prefix_pool(q_past[:, :, :, 1:], 3, pool, reverse=True)
        a = (q_r @ k_past[:, :, :, 1:].transpose(-1, -2)).masked_fill(causal.T, NEG_INF)
        values["right"] = a.softmax(-1) @ v_past[:, :, :, 1:]  # [r', c]: columns >= c+1
        k_r = _prefix_pool(k_past[:, :, :, 1:], 3, pool, reverse=True)
        right = col_major(q_now[:, :, :, :-1]) @ col_major(k_r).transpose(-1, -2)
        right = col_major(right.masked_fill(tri, NEG_INF))
        groups["right"] = torch.cat([right, right.new_full((B, H, P, 1, P), NEG_INF)], dim=3)
    # own-row logits of rows 1..n-1 join the other groups; row 0 has its own row only
    names = ["col", "row", *[g for g in ("vert", "left", "right") if g in groups]]
    groups["row"] = own_row[:, :, 1:]
    sizes = [groups[g].shape[-1] for g in names]
    logits = torch.cat([groups[g] for g in names], dim=-1)  # (B,H,P,m,3P+2m)
    if not average:
        w = dict(zip(names, logits.softmax(-1).split(sizes, dim=-1), strict=True))
    else:
        # the paper's mixture: ½ (vertical plan + horizontal plan), each with its own softmax
        plan_v = [g for g in names if g not in ("left", "right")]
        plan_h = [g for g in names if g != "vert"]
        w = dict.fromkeys(names, 0.0)
        for plan in (plan_v, plan_h):
            sm = torch.cat([groups[g] for g in plan], dim=-1).softmax(-1)
            parts = sm.split([groups[g].shape[-1] for g in plan], dim=-1)
            for g, part in zip(plan, parts, strict=True):
                w[g] = w[g] + 0.5 * part
    row0 = own_row[:, :, :1].softmax(-1)
    y = torch.cat([row0, w["row"]], dim=2) @ vg  # (B,H,n,m,dv)
    y_past = col_major(col_major(w["col"]) @ col_major(v_past))  # (B,H,P,m,dv)
    if m > 1:
        y_past = y_past + w["vert"] @ values["vert"]
        y_l = col_major(col_major(w["left"][:, :, :, 1:]) @ col_major(values["left"]))
        y_r = col_major(col_major(w["right"][:, :, :, :-1]) @ col_major(values["right"]))
        zero = y_l.new_zeros(B, H, P, 1, dv)
        y_past = y_past + torch.cat([zero, y_l], dim=3) + torch.cat([y_r, zero], dim=3)
    y = torch.cat([y[:, :, :1], y[:, :, 1:] + y_past], dim=2)
    return y.reshape(B, H, n * m, dv)[:, :, :T]


def mixture_dots(T: int, row: int) -> tuple[int, int]:
    """(exact, dense) dots per head of :func:`mixture_attention`."""
    m = min(row, T)
    t = _rows(T, m)
    n = len(t)
    P = n - 1
    dense = 2 * n * m * m + 2 * m * P * P
    if P and m > 1:
        dense += 2 * m * P * P + 2 * P * m * m  # vertical summaries, vertical terms
        dense += 2 * (2 * P * (m - 1) ** 2 + 2 * (m - 1) * P * P)  # top-left, top-right
    exact = 0
    for r, tr in enumerate(t):
        exact += tr * (tr + 1)  # own row, c' <= c, QK + PV
        exact += 2 * r * tr  # own column, rows < r
        if m > 1 and r > 0:
            exact += 2 * (m - 1) * tr  # vertical terms: every other column
            exact += 2 * r * (max(tr - 1, 0) + min(tr, m - 1))  # top-left (c>=1), top-right
        if m > 1 and r < P:
            # summaries made from row r (and the rows above it), used by row r+1 onwards
            nxt = t[r + 1]
            used_cols = m if nxt >= 2 else m - 1  # vertical: some query in another column
            exact += 2 * (r + 1) * used_cols  # column summary over rows <= r
            exact += nxt * (nxt - 1)  # top-left summary for column c in [1, nxt): c keys
            hi = min(nxt, m - 1)  # top-right summary for column c in [0, hi): m-1-c keys
            exact += 2 * (hi * (m - 1) - hi * (hi - 1) // 2)
    return exact, dense


# ---------------------------------------------------------------------------------------------
# the mixer


@dataclass
class FixedDecodeState:
    """What Combiner-Fixed holds between :meth:`CombinerAttention.step` calls (per layer).

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


@register_mixer("combiner")
class CombinerAttention(AttentionMixer):
    """Combiner attention: direct terms + span summaries under one joint softmax."""

    @dataclass(frozen=True, kw_only=True)
    class Config(AttentionConfig):
        variant: Variant = "fixed"
        """fixed | logsparse | axial (row-major) | mixture (architectures.md §5(b))"""
        block_size: BlockSize = _DEFAULT_BLOCK
        """block length s (fixed) or row length m (axial, mixture): an integer >= 1, or 'sqrt'
        for max(1, ⌊√T⌋) at each sequence length T (cost is lowest near √T: O(T^1.5·D));
        logsparse has no block and keeps the default"""
        pool: Pool = "max"
        """span summary pooling of keys and queries (prefix/suffix pooling for mixture);
        axial does not pool and keeps the default"""
        row_summary: RowSummary = "proj"
        """axial only: the key of a row summary (TF row_summary); proj/wsum_proj add W_p, a
        LayerNorm and W_k2"""
        mixture: MixtureMode = "joint"
        """mixture only: joint (official code, one softmax) or average (paper, ½ per plan)"""

        def __post_init__(self) -> None:
            super().__post_init__()
            v = self.variant
            b = self.block_size
            ok = b == "sqrt" or (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
            require(ok, "block_size", b, "an integer >= 1 or 'sqrt'")
            if v == "logsparse":
                require(
                    self.block_size == _DEFAULT_BLOCK,
                    "block_size",
                    self.block_size,
                    f"the default {_DEFAULT_BLOCK}: logsparse has no block size",
                )
            if v == "axial":
                require(self.pool == "max", "pool", self.pool, "'max': axial does not pool")
            require(
                v == "axial" or self.row_summary == "proj",
                "row_summary",
                self.row_summary,
                "the default 'proj': row_summary applies to variant axial only",
            )
            require(
                v == "mixture" or self.mixture == "joint",
                "mixture",
                self.mixture,
                "the default 'joint': mixture applies to variant mixture only",
            )

        def block_len(self, seq_len: int) -> int:
            """The block length s (row length m) used for a sequence of ``seq_len`` tokens:
            ``block_size``, or ``max(1, ⌊√seq_len⌋)`` for ``'sqrt'``. Not clamped to
            ``seq_len`` (the kernels clamp an int block larger than T)."""
            if isinstance(self.block_size, int):
                return self.block_size
            return max(1, math.isqrt(seq_len))  # "sqrt"

        @property
        def projected_keys(self) -> bool:
            return self.variant == "axial" and self.row_summary in ("proj", "wsum_proj")

    cfg: Config
    summary = (
        "Combiner (Ren et al. 2021): full-support attention, direct terms + span summaries in "
        "one softmax; variants fixed, logsparse, axial, mixture"
    )
    complexity = "O(T·(s + T/s)·D), O(T^1.5·D) at s = √T (block_size: sqrt); logsparse O(T·log T·D)"
    decode_state_formula = "fixed 2·D·(s + T/s), 4·D·√T at s = √T; others O(T·D)"
    supports_decode = False  # only variant fixed decodes (init_state/step); see the report

    def __init__(self, cfg: Config, ctx: MixerContext) -> None:
        super().__init__(cfg, ctx)
        D = ctx.d_model
        if cfg.projected_keys:
            # architectures.md §5(b) Combiner-Axial: k̃ = W_k2·LN(x + W_p·concat_heads(v̄))
            self.summary_proj = nn.Linear(D, D, bias=cfg.bias)
            self.summary_norm = nn.LayerNorm(D, bias=cfg.bias)
            self.summary_key = nn.Linear(D, D, bias=cfg.bias)

    # ---- projections (shared by forward and step) ----

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        B, T, D = x_BTD.shape
        q, k, v = self._project(x_BTD)
        cfg = self.cfg
        block = cfg.block_len(T)
        if cfg.variant == "fixed":
            y = fixed_attention(q, k, v, block, cfg.pool)
        elif cfg.variant == "logsparse":
            y = logsparse_attention(q, k, v, cfg.pool)
        elif cfg.variant == "axial":
            key_fn = None
            if cfg.projected_keys:
                m = min(block, T)

                def key_fn(k_wsum: torch.Tensor | None, v_bar: torch.Tensor) -> torch.Tensor:
                    return self._summary_keys(x_BTD, m, v_bar if k_wsum is None else k_wsum)

            y = axial_attention(q, k, v, block, cfg.row_summary, key_fn)
        else:
            y = mixture_attention(q, k, v, block, cfg.pool, cfg.mixture == "average")
        return self.out(y.transpose(1, 2).reshape(B, T, D))

    def _summary_keys(self, x_BTD: torch.Tensor, m: int, pre_BHPmd: torch.Tensor) -> torch.Tensor:
        """Axial ``proj``: k̃ = W_k2·LN(x + W_p·concat_heads(pre)) for rows 0..n-2, (B,H,P,m,d)."""
        B, H, P, _, d = pre_BHPmd.shape
        pre = pre_BHPmd.permute(0, 2, 3, 1, 4).reshape(B, P * m, H * d)
        h = self.summary_norm(x_BTD[:, : P * m] + self.summary_proj(pre))
        k_bar = self.summary_key(h).view(B, P * m, H, d).transpose(1, 2)  # (B,H,P·m,d)
        if self.ctx.rope:
            k_bar = self._rope(k_bar)  # a fresh key at position (r', c)
        return k_bar.reshape(B, H, P, m, d)

    # ---- incremental decoding (variant fixed) ----

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> FixedDecodeState:
        """Empty decoding state (variant fixed only). The state grows by one pooled key and one
        summary per finished block, so ``max_len`` needs no pre-allocation; it fixes the block
        for ``block_size: sqrt`` (``⌊√max_len⌋``, or ``⌊√ctx.max_seq_len⌋`` when None), so that
        :meth:`step` reproduces ``forward`` on sequences of ``max_len`` tokens."""
        if self.cfg.variant != "fixed":
            raise NotImplementedError(
                f"incremental decoding is implemented for variant 'fixed' only, "
                f"not {self.cfg.variant!r}"
            )
        p = self.qkv.weight
        empty = torch.zeros(
            batch,
            self.n_heads,
            0,
            self.head_dim,
            dtype=dtype or p.dtype,
            device=device or p.device,
        )
        block = self.cfg.block_len(self.ctx.max_seq_len if max_len is None else max_len)
        return FixedDecodeState(0, block, empty, empty, None, empty, empty)

    def step(
        self, x_B1D: torch.Tensor, state: FixedDecodeState
    ) -> tuple[torch.Tensor, FixedDecodeState]:
        """One token: ``y_B1D`` equals ``forward`` at position ``state.pos``; returns new state."""
        if self.cfg.variant != "fixed":
            raise NotImplementedError("incremental decoding is implemented for variant 'fixed'")
        B, one, D = x_B1D.shape
        assert one == 1, "step() takes one token: x of shape (B, 1, D)"
        s, pool = state.block, self.cfg.pool
        q, k, v = self._project(x_B1D, state.pos)
        q = q * self.head_dim**-0.5
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
            k_sum = torch.cat([k_sum, _pool(k_blk, 2, pool).unsqueeze(2)], dim=2)
            v_sum = torch.cat([v_sum, a @ v_blk], dim=2)
            k_blk, v_blk, q_pool = k_blk[:, :, :0], v_blk[:, :, :0], None
        new = FixedDecodeState(state.pos + 1, s, k_blk, v_blk, q_pool, k_sum, v_sum)
        return self.out(y.transpose(1, 2).reshape(B, 1, D)), new

    # ---- costs ----

    @classmethod
    def flop_exponent(cls, cfg: MixerConfig) -> float:
        """logsparse T·log T (1); a block that grows as √T gives T^1.5; a fixed block T²/s (2)."""
        assert isinstance(cfg, cls.Config)
        if cfg.variant == "logsparse":
            return 1.0
        return 1.5 if cfg.block_size == "sqrt" else 2.0

    @classmethod
    def core_dots(cls, cfg: Config, seq_len: int) -> tuple[int, int]:
        """(exact, dense) dots per head; core FLOPs are ``2·D`` per dot."""
        T, block = seq_len, cfg.block_len(seq_len)
        if cfg.variant == "fixed":
            return fixed_dots(T, block)
        if cfg.variant == "logsparse":
            return logsparse_dots(T)
        if cfg.variant == "axial":
            return axial_dots(T, block, wsum=cfg.row_summary.startswith("wsum"))
        return mixture_dots(T, block)

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        assert isinstance(cfg, cls.Config)
        D, T = ctx.d_model, seq_len
        exact, dense = cls.core_dots(cfg, T)
        proj = cls.projection_flops(D, T)
        if cfg.projected_keys:
            m = min(cfg.block_len(T), T)
            proj += 4 * D * D * (_ceil_div(T, m) - 1) * m  # W_p and W_k2 on rows 0..n-2
        return MixerFlops(projections=proj, core_exact=2 * D * exact, core_dense=2 * D * dense)

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        """Numbers a token-by-token decoder holds after ``seq_len`` tokens (per sequence).

        fixed (implemented): open block K/V + its pooled query + (k_Ω, v̄_Ω) per finished
        block. The others are what such a decoder would need (architectures.md §5(d)):
        logsparse raw K/V (large spans are summarised from them) + the ≤ ⌈log2 T⌉ live span
        summaries; axial (k̃, v̄) per position of finished rows + q, k, v (and x for the projected
        keys) of the open row; mixture raw K/V (column summaries re-attend whole columns), the
        left and right row summaries (k, v each) of finished rows, per-column pooled key, pooled
        query and summary, and the open row's queries (for its suffix summaries).

        With ``block_size: sqrt`` the block is that of ``seq_len`` (a decoder made with
        ``max_len = seq_len``), so the count is not monotone in ``seq_len`` (15 -> 16 changes s
        from 3 to 4: 5 summaries become 4).
        """
        assert isinstance(cfg, cls.Config)
        D, T, b = ctx.d_model, seq_len, cfg.block_len(seq_len)
        done, r = divmod(T, b)
        if cfg.variant == "fixed":
            return 2 * D * (done + r) + (D if r else 0)
        if cfg.variant == "logsparse":
            return 2 * D * (T + logsparse_levels(T))
        if cfg.variant == "axial":
            return 2 * D * b * done + (4 if cfg.projected_keys else 3) * D * r
        return 2 * D * T + 4 * D * b * done + 3 * D * min(b, T) + D * r

    # ---- conformance hooks ----

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        C = cls.Config
        return [
            C(n_heads=2, variant="fixed", block_size=4),
            C(n_heads=2, variant="fixed", block_size=5, pool="mean"),
            C(n_heads=2, variant="logsparse"),
            C(n_heads=4, variant="logsparse", pool="mean"),
            C(n_heads=2, variant="axial", block_size=5),
            C(n_heads=2, variant="axial", block_size=4, row_summary="none"),
            C(n_heads=2, variant="axial", block_size=6, row_summary="wsum"),
            C(n_heads=2, variant="axial", block_size=5, row_summary="wsum_proj"),
            C(n_heads=2, variant="mixture", block_size=5),
            C(n_heads=2, variant="mixture", block_size=4, pool="mean", mixture="average"),
            # s = m = ⌊√T⌋ at every T (decoding: the block of max_len)
            C(n_heads=2, variant="fixed", block_size="sqrt"),
            C(n_heads=2, variant="fixed", block_size="sqrt", pool="mean"),
            C(n_heads=2, variant="axial", block_size="sqrt"),
            C(n_heads=2, variant="mixture", block_size="sqrt"),
        ]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        from archsearch.mixers.softmax import SoftmaxAttention

        C, T = cls.Config, seq_len
        full = SoftmaxAttention.Config(n_heads=2)
        return [
            # s = 1: every earlier token is its own span (k_Ω = k_j, v̄ = v_j); s = T: all direct
            (C(n_heads=2, variant="fixed", block_size=1), "softmax", full),
            (C(n_heads=2, variant="fixed", block_size=1, pool="mean"), "softmax", full),
            (C(n_heads=2, variant="fixed", block_size=T), "softmax", full),
            # one row: everything is direct (no row summaries, so no summary-key parameters)
            (C(n_heads=2, variant="axial", block_size=T, row_summary="none"), "softmax", full),
            (C(n_heads=2, variant="mixture", block_size=T), "softmax", full),
            # one column: own column above + self is the whole prefix
            (C(n_heads=2, variant="mixture", block_size=1), "softmax", full),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [
            *super().invalid_configs(),
            ({"variant": "routing"}, "variant"),
            ({"block_size": 0}, "block_size"),
            ({"block_size": "cube"}, "block_size"),
            ({"block_size": 2.5}, "block_size"),
            ({"variant": "logsparse", "block_size": "sqrt"}, "block_size"),
            ({"pool": "sum"}, "pool"),
            ({"variant": "logsparse", "block_size": 16}, "block_size"),
            ({"variant": "axial", "pool": "mean"}, "pool"),
            ({"variant": "fixed", "row_summary": "wsum"}, "row_summary"),
            ({"variant": "axial", "mixture": "average"}, "mixture"),
        ]
