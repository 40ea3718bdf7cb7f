"""Combiner-Mixture (official JAX code ``_AxialMixtureAtt`` / TF ``axial_mixture_unidir``;
docs/architectures.md, "Combiner").

Row length ``m``: direct = own column above (rows ``< r``) and own row up to itself; spans:
*vertical* (each other column, rows ``< r``: prefix-pooled key, value from causal column attention
with a prefix-pooled query), *top-left* (each earlier row, columns ``< c``: prefix pooling) and
*top-right* (each earlier row, columns ``> c``: suffix pooling). Rows ``< r`` × columns ``≠ c`` are
covered by both the vertical and the horizontal plan. ``average = False`` is the official code: one
softmax over all five groups. ``average = True`` is the paper's §3.3 form
``A_i = ½(A_i(vertical) + A_i(horizontal))``: two softmaxes, one over [direct, vertical], one over
[direct, top-left, top-right], averaged; same matmuls, same FLOPs. (The TF port replaces cummax by
cumsum; this uses true prefix max / prefix mean.) The largest score tensor is ``(n, m, 3n + 2m)``.

Dense dots (``P = n − 1``): ``2·n·m² + 2·m·P²`` (own row, own column) ``+ 2·m·P² + 2·P·m²``
(vertical summaries, vertical terms) ``+ 2·[2·P·(m−1)² + 2·(m−1)·P²]`` (top-left and top-right
summaries and terms) ≈ ``8·T·(m + n)``.
"""

from __future__ import annotations

import torch

from archsearch.ops.combiner._common import (
    NEG_INF,
    ceil_div,
    grid,
    prefix_pool,
    row_lengths,
    tril,
)

_Groups = dict[str, torch.Tensor]


def _col_major(x: torch.Tensor) -> torch.Tensor:
    """(B,H,rows,cols,*) <-> (B,H,cols,rows,*)."""
    return x.transpose(2, 3)


def _span_groups(
    q_now: torch.Tensor,
    past: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    tri: torch.Tensor,
    pool: str,
    groups: _Groups,
    values: _Groups,
) -> None:
    """Add the vertical, top-left and top-right span logits (``groups``) and summaries
    (``values``) for queries ``q_now`` (rows 1..n-1) over ``past`` q, k, v (rows 0..n-2)."""
    q_past, k_past, v_past = past
    B, H, P, m, _ = q_now.shape
    col_major = _col_major
    # 3. vertical spans: column c' rows <= ρ, seen by row ρ+1 from every column c != c'
    q_pre = prefix_pool(col_major(q_past), 3, pool)  # (B,H,m,P,d)
    a = (q_pre @ col_major(k_past).transpose(-1, -2)).masked_fill(tri, NEG_INF).softmax(-1)
    values["vert"] = col_major(a @ col_major(v_past))  # (B,H,P,m,dv): [ρ, c']
    k_vert = prefix_pool(k_past, 2, pool)  # (B,H,P,m,d): [ρ, c'] pooled over rows <= ρ
    vert = q_now @ k_vert.transpose(-1, -2)  # (B,H,P,m,m)
    eye = torch.eye(m, dtype=torch.bool, device=q_now.device)
    groups["vert"] = vert.masked_fill(eye, NEG_INF)  # c' = c is the own column (direct)
    # 4. top-left spans: row r' < r, columns < c (prefix pooling along the row)
    causal = ~tril(m - 1, q_now.device)
    q_l = prefix_pool(q_past[:, :, :, :-1], 3, pool)
    a = (q_l @ k_past[:, :, :, :-1].transpose(-1, -2)).masked_fill(causal, NEG_INF)
    values["left"] = a.softmax(-1) @ v_past[:, :, :, :-1]  # [r', c-1]: columns <= c-1
    k_l = prefix_pool(k_past[:, :, :, :-1], 3, pool)  # (B,H,P,m-1,d)
    left = col_major(q_now[:, :, :, 1:]) @ col_major(k_l).transpose(-1, -2)  # (B,H,m-1,P,P)
    left = col_major(left.masked_fill(tri, NEG_INF))  # (B,H,P,m-1,P)
    groups["left"] = torch.cat([left.new_full((B, H, P, 1, P), NEG_INF), left], dim=3)
    # 5. top-right spans: row r' < r, columns > c (suffix pooling along the row)
    q_r = prefix_pool(q_past[:, :, :, 1:], 3, pool, reverse=True)
    a = (q_r @ k_past[:, :, :, 1:].transpose(-1, -2)).masked_fill(causal.T, NEG_INF)
    values["right"] = a.softmax(-1) @ v_past[:, :, :, 1:]  # [r', c]: columns >= c+1
    k_r = prefix_pool(k_past[:, :, :, 1:], 3, pool, reverse=True)
    right = col_major(q_now[:, :, :, :-1]) @ col_major(k_r).transpose(-1, -2)
    right = col_major(right.masked_fill(tri, NEG_INF))
    groups["right"] = torch.cat([right, right.new_full((B, H, P, 1, P), NEG_INF)], dim=3)


def _weights(groups: _Groups, names: list[str], average: bool) -> dict[str, torch.Tensor | float]:
    """Attention weights per group: one joint softmax, or the average of the two plans'."""
    sizes = [groups[g].shape[-1] for g in names]
    logits = torch.cat([groups[g] for g in names], dim=-1)  # (B,H,P,m,3P+2m)
    if not average:
        return dict(zip(names, logits.softmax(-1).split(sizes, dim=-1), strict=True))
    # the paper's mixture: ½ (vertical plan + horizontal plan), each with its own softmax
    plan_v = [g for g in names if g not in ("left", "right")]
    plan_h = [g for g in names if g != "vert"]
    w: dict[str, torch.Tensor | float] = dict.fromkeys(names, 0.0)
    for plan in (plan_v, plan_h):
        sm = torch.cat([groups[g] for g in plan], dim=-1).softmax(-1)
        parts = sm.split([groups[g].shape[-1] for g in plan], dim=-1)
        for g, part in zip(plan, parts, strict=True):
            w[g] = w[g] + 0.5 * part
    return w


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
    n = ceil_div(T, m)
    q = q * d**-0.5
    qg, kg, vg = grid(q, n, m), grid(k, n, m), grid(v, n, m)
    own_row = (qg @ kg.transpose(-1, -2)).masked_fill(~tril(m, q.device), NEG_INF)
    if n == 1:
        return (own_row.softmax(-1) @ vg).reshape(B, H, m, dv)[:, :, :T]
    P = n - 1
    tri = ~tril(P, q.device)  # column-major (.., query row ρ+1, key row u): masked where u > ρ
    col_major = _col_major
    q_now = qg[:, :, 1:]  # queries that have earlier rows: (B,H,P,m,d)
    q_past, k_past, v_past = qg[:, :, :P], kg[:, :, :P], vg[:, :, :P]
    # 1. own column, rows < r (direct)
    own_col = col_major(q_now) @ col_major(k_past).transpose(-1, -2)  # (B,H,m,P,P)
    groups = {"col": col_major(own_col.masked_fill(tri, NEG_INF))}  # (B,H,P,m,P)
    values: _Groups = {}
    if m > 1:
        _span_groups(q_now, (q_past, k_past, v_past), tri, pool, groups, values)
    # own-row logits of rows 1..n-1 join the other groups; row 0 has its own row only
    names = ["col", "row", *[g for g in ("vert", "left", "right") if g in groups]]
    groups["row"] = own_row[:, :, 1:]
    w = _weights(groups, names, average)
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
    t = row_lengths(T, m)
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
