"""Dense references of the four Combiner variants, written from the definition as masks.

A variant is three masks over the real tokens (no padding, no blocks):

* ``direct[i, j]`` (T×T): query i scores key j exactly;
* ``members[Ω, j]`` (S×T): span Ω holds key j;
* ``use[i, Ω]`` (T×S): query i scores span Ω.

Per head, with ``q`` scaled by 1/√d, span Ω has a query ``q_Ω`` and key ``k_Ω`` (max or mean of
q and k over its members, unless the variant gives them), a local expectation
``v̄_Ω = Σ_{j∈Ω} softmax_j(q_Ω·k_j) v_j``, and query i takes ONE softmax over
``[q_i·k_j for direct j] ∪ [q_i·k_Ω for used Ω]`` and mixes ``v_j`` and ``v̄_Ω`` with it (the
average of several such softmaxes, one per *plan*, for the paper's mixture). Every tensor is
T×T, T×S or S×T: slow, plain, float64-friendly; for tests on small shapes only.

:func:`reference_dots` counts the dots (one d-wide product each) such a computation needs for the
used spans, which is what the kernels' exact counts mean (axial shares its in-row ``QKᵀ``
between direct logits and row summaries, so its count is not this one; see the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

NEG_INF = float("-inf")

#: span keys from (span attention a (B,H,S,T), local expectations v̄ (B,H,S,dv)) -> (B,H,S,d)
SpanKeys = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class CombinerMasks:
    """The structure of one variant at one sequence length (see the module docstring)."""

    direct: torch.Tensor
    members: torch.Tensor
    use: torch.Tensor
    #: span subsets by kind (mixture: "vert", "left", "right"), each (S,) bool
    families: dict[str, torch.Tensor] = field(default_factory=dict)
    #: span Ω is the row summary of position ``span_pos[Ω]`` (axial), else None
    span_pos: torch.Tensor | None = None


def _positions(T: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pos = torch.arange(T)
    return pos, pos // m, pos % m


def _masks(direct: torch.Tensor, spans: list[tuple[torch.Tensor, torch.Tensor]]) -> CombinerMasks:
    T = direct.shape[0]
    if not spans:
        return CombinerMasks(direct, torch.zeros(0, T, dtype=torch.bool), torch.zeros(T, 0).bool())
    members = torch.stack([mem for mem, _ in spans])
    use = torch.stack([u for _, u in spans], dim=1)
    return CombinerMasks(direct, members, use)


def fixed_masks(T: int, block: int) -> CombinerMasks:
    """Direct: own block up to i; spans: every earlier block."""
    pos, blk, _ = _positions(T, min(block, T))
    direct = (blk[:, None] == blk[None, :]) & (pos[None, :] <= pos[:, None])
    spans = [(blk == u, blk > u) for u in range(int(blk.max()))]
    return _masks(direct, spans)


def logsparse_masks(T: int) -> CombinerMasks:
    """Direct: i, and i−1 for odd i; spans: for every level l ≥ 1 the aligned blocks
    ``[e·2^l, (e+1)·2^l)`` with e even, used by the queries with ``⌊i/2^l⌋ = e + 1``."""
    pos = torch.arange(T)
    direct = (pos[None, :] == pos[:, None]) | (
        (pos[:, None] % 2 == 1) & (pos[None, :] == pos[:, None] - 1)
    )
    spans = []
    c = 2
    while c < T:
        for e in range(0, T // c, 2):
            spans.append(((pos >= e * c) & (pos < (e + 1) * c), pos // c == e + 1))
        c *= 2
    return _masks(direct, spans)


def axial_masks(T: int, row: int) -> CombinerMasks:
    """Direct: own row up to i; spans: row r' seen from column c (one per earlier-row position),
    used by the queries of column c in later rows."""
    m = min(row, T)
    pos, r, c = _positions(T, m)
    direct = (r[:, None] == r[None, :]) & (pos[None, :] <= pos[:, None])
    P = int(r.max())
    spans = [(r == p // m, (c == p % m) & (r > p // m)) for p in range(P * m)]
    masks = _masks(direct, spans)
    masks.span_pos = torch.arange(P * m)
    return masks


def mixture_masks(T: int, row: int) -> CombinerMasks:
    """Direct: own column above and own row up to i; spans: vertical (column c', rows ≤ ρ; used
    by row ρ+1 from the other columns), top-left (row r', columns < c) and top-right (row r',
    columns > c), both used by column c of the rows below r'."""
    m = min(row, T)
    pos, r, c = _positions(T, m)
    same_row = (r[:, None] == r[None, :]) & (pos[None, :] <= pos[:, None])
    same_col = (c[:, None] == c[None, :]) & (r[None, :] < r[:, None])
    P = int(r.max())
    kinds: list[str] = []
    spans = []
    for rho in range(P):
        for cc in range(m):
            spans.append(((c == cc) & (r <= rho), (r == rho + 1) & (c != cc)))
            kinds.append("vert")
        for cc in range(1, m):
            spans.append(((r == rho) & (c < cc), (r > rho) & (c == cc)))
            kinds.append("left")
        for cc in range(m - 1):
            spans.append(((r == rho) & (c > cc), (r > rho) & (c == cc)))
            kinds.append("right")
    masks = _masks(same_row | same_col, spans)
    masks.families = {
        f: torch.tensor([k == f for k in kinds], dtype=torch.bool)
        for f in ("vert", "left", "right")
    }
    return masks


def _masked_pool(x: torch.Tensor, members: torch.Tensor, pool: str) -> torch.Tensor:
    """(B, H, T, d) pooled over each span's members -> (B, H, S, d)."""
    sel = members[:, :, None]  # (S, T, 1)
    if pool == "max":
        return x[:, :, None].masked_fill(~sel, NEG_INF).amax(3)
    return (x[:, :, None] * sel).sum(3) / sel.sum(1)


def combiner_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    masks: CombinerMasks,
    *,
    pool: str = "max",
    span_keys: SpanKeys | None = None,
    plans: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Combiner on (B, H, T, d) q, k, v from ``masks`` (see the module docstring).

    Span queries and keys are pooled over the members, except that a variant with
    ``masks.span_pos`` (axial) uses the query at that position and, as keys, ``span_keys(a, v̄)``
    or (None) the raw key at that position. ``plans``: span subsets, one softmax each, averaged
    (None: one softmax over all spans)."""
    d = q.shape[-1]
    q = q * d**-0.5
    dev = q.device
    direct, members, use = masks.direct.to(dev), masks.members.to(dev), masks.use.to(dev)
    if masks.span_pos is None:
        q_span, k_span = _masked_pool(q, members, pool), _masked_pool(k, members, pool)
    else:
        q_span, k_span = q[:, :, masks.span_pos], k[:, :, masks.span_pos]
    a = (q_span @ k.transpose(-1, -2)).masked_fill(~members, NEG_INF).softmax(-1)  # (B,H,S,T)
    v_bar = a @ v
    if span_keys is not None:
        k_span = span_keys(a, v_bar)
    logits_direct = (q @ k.transpose(-1, -2)).masked_fill(~direct, NEG_INF)
    logits_span = q @ k_span.transpose(-1, -2)
    T = q.shape[2]
    plans = [torch.ones(use.shape[1], dtype=torch.bool)] if plans is None else plans
    y = torch.zeros_like(v)
    for plan in plans:
        span_ok = use & plan.to(dev)[None, :]
        w = torch.cat([logits_direct, logits_span.masked_fill(~span_ok, NEG_INF)], -1).softmax(-1)
        y = y + (w[..., :T] @ v + w[..., T:] @ v_bar) / len(plans)
    return y


def reference_dots(masks: CombinerMasks) -> int:
    """Dots per head: QK and PV for every direct pair and every used span term, and QK and PV
    over the members of every span some query uses (its summary)."""
    used = masks.use.any(0)
    summaries = int(masks.members[used].sum())
    return 2 * int(masks.direct.sum()) + 2 * int(masks.use.sum()) + 2 * summaries
