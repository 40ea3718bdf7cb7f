"""Combiner-Axial, row-major (official JAX code ``_SelfAttAxialRowmajor``; docs/architectures.md,
"Combiner").

Row length ``m``: direct = the query's own row up to itself; one span per earlier row. The summary
of row ``r'`` seen from column ``c`` is the row's *bidirectional* attention output at ``(r', c)``
(legal: the row is wholly in the past); its key is the raw key, the row-attention-weighted key sum,
or a projection the caller computes (``key_fn``). The in-row ``QKᵀ`` serves both the direct logits
(masked) and the row summaries (unmasked). The largest score tensor is ``(n, m, m + n)``.

Dense dots (``P = n − 1``): ``2·n·m² + P·m² (+ P·m² for wsum) + 2·m·P²`` (in-row QK and direct PV,
row-summary PV, [weighted key sum], global QK/PV per column) ≈ ``3·T·m + 2·T·n``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archsearch.ops.combiner._common import NEG_INF, ceil_div, grid, row_lengths, tril

#: projected summary keys: (weighted key sum or None, v̄) -> keys, all (B, H, n−1, m, d)
KeyFn = Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]


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
    n = ceil_div(T, m)
    q = q * d**-0.5
    qg, kg, vg = grid(q, n, m), grid(k, n, m), grid(v, n, m)
    scores = qg @ kg.transpose(-1, -2)  # (B,H,n,m,m), shared by direct logits and row summaries
    direct = scores.masked_fill(~tril(m, q.device), NEG_INF)
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
    glob = glob.masked_fill(~tril(P, q.device), NEG_INF).transpose(2, 3)  # (B,H,P,m,P)
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
    t = row_lengths(T, m)
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
