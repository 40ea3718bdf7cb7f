"""Hierarchical Shift Mixing, HSM (Forchheimer, arXiv 2601.22852v1, 2026), **reconstructed**.

Only the abstract and a third-party summary of the paper were available (docs/architectures.md,
"HSM"). Confirmed there: HSM spreads pairwise token interactions across layers instead of computing
them densely inside each layer; it is linear-time, causal and parallel, and agnostic to the mixing
function; the simplest "(a,b) mixer" does well when the freed parameters go to the FFN; hybrids with
softmax layers beat a GPT baseline. **Everything below is a reconstruction [R]**, written as a
configurable framework so each guess is one config field that can be searched over and corrected
once the method section is read:

* **shifted copies** [R]: a layer mixes each token ``u_t`` with ``u_{t−j·d}``, ``j < r``,
  zero-padded at the start (``u_{t−j·d} = 0`` for ``t < j·d``; never a cyclic roll), or with a
  learned pad vector (initialised ``N(0, 0.02²)``);
* **hierarchical schedule** [R]: K = ``⌈log_base max_seq_len⌉`` levels (``levels`` overrides
  K), level ℓ meaning the digit ``base^ℓ``. ``p`` is the layer's index among the stack's n HSM
  layers (``schedule_by: hsm_layers``) or among all n layers (``all_layers``).
  ``coverage: full`` (default): the levels are dealt out in chunks of ``k = ⌈K/n⌉`` consecutive
  levels, chunk c starting at ``min(c·k, K − k)``; layer p holds chunk ``p mod ⌈K/k⌉`` (reversed
  for ``descending``) with stride ``d = base^start`` and radix ``r = base^k``, so every offset
  below ``base^K`` is a sum of one offset per layer and the stack sees its whole window at any
  depth. ``coverage: cycle`` (the earlier schedule): one level per layer (``r = base``),
  ``level = p mod K`` (``ascending``) or ``K − 1 − (p mod K)`` (``descending``), with holes when
  there are fewer layers than levels (docs/architectures.md, "HSM");
* **base b** [R]: with ``coverage: cycle`` a layer reads ``b − 1`` copies, so K layers reach
  every distance below ``b^K`` along exactly one path (its base-b digits). Without residuals a
  stack of linear ``ab`` layers is then a causal depthwise convolution with a product kernel
  (tested). Below, ``b`` is the layer's radix r;
* **several shifts per layer** [R]: ``shift_groups = G`` splits the channels (heads for
  ``pair_softmax``) into G equal groups; under ``cycle`` group g of the layer at schedule
  position p uses position ``p·G + g``, under ``full`` chunk ``(p + g) mod ⌈K/k⌉``;
* **mixing functions** [R] (only the name "(a,b) mixer" is confirmed), with ``S_j = u_{t−j·d}``:

  - ``ab``: ``a ⊙ u_t + Σ_j b_j ⊙ S_j``, learned per channel, per head or one scalar
    (``ab_weights``); no matrices, ``b·C`` parameters; ``a + Σ b`` is not constrained.
    Initialised near the mean, ``N(1/b, 0.02²)``;
  - ``gated``: per-channel convex weights ``softmax([W_g [u_t; S_1; …]; 0])`` over the b inputs; at
    b = 2 this is ``g ⊙ u_t + (1 − g) ⊙ u_{t−d}`` with ``g = σ(W_g [u_t; u_{t−d}])``;
  - ``pair_softmax``: per head, softmax attention over the b keys ``{t, t−d, …}``, with Q/K/V/O
    projections (keys and values are projected once per token, then shifted). Pad keys are
    masked out (``pad: zeros``) or are a learned key and value (``pad: learned``). No RoPE: the
    fixed shifts already say where each key is;
  - ``pair_mlp``: ``W₂ GELU(W₁ [u_t; S_1; …])`` with hidden width ``pair_mlp_ratio · D``.

Cost per layer and sequence (multiply-add = 2 FLOPs; T tokens, D width, b = base; docs/costs.md,
"FLOP conventions"). The elementwise mixing arithmetic is reported as ``elementwise``
(FlopCounterMode does not see it; ``archsearch.profiling.counter.count_flops(...,
elementwise=True)`` does):

* ``ab``: ``(2b − 1)·T·D`` elementwise: b products and b − 1 sums per channel; ``3·T·D`` at b = 2;
* ``gated``: projection ``2·T·bD·(b−1)D`` (``4·T·D²`` at b = 2), elementwise ``(2b − 1)·T·D``;
  the gate's softmax is not counted (as no softmax is);
* ``pair_softmax``: projections ``8·T·D²``; core ``4·D·b·T`` as computed, exact
  ``4·(D/G)·Σ_g Σ_j (T − j·d_g)⁺`` (masked pad keys not counted); score scaling, masking and
  softmax are not counted;
* ``pair_mlp``: ``2·T·bD·h + 2·T·h·D`` for hidden width h.

No term grows faster than T at a fixed ``max_seq_len``; under ``coverage: full`` a layer reads
``r − 1 ≈ max_seq_len^(1/n)`` copies, so with ``max_seq_len = T`` the cost is ``T^(1 + 1/n)``
(:meth:`HierarchicalShiftMixing.stack_flop_exponent`). Decode state: a ring buffer per group of
the last ``(b − 1)·d_g`` inputs (keys and values for ``pair_softmax``):
``Σ_g min(T, (b−1)·d_g)·D/G`` numbers (twice that for ``pair_softmax``); over a stack about
``max_seq_len · D`` (either coverage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from archsearch.errors import ConfigError, require
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops, TokenMixer
from archsearch.mixers._reach import offset_reads
from archsearch.mixers._registry import register_mixer
from archsearch.mixers.sliding_window import SlidingWindowAttention

MIXINGS = ("ab", "gated", "pair_softmax", "pair_mlp")
AB_WEIGHTS = ("channel", "head", "scalar")
SCHEDULES = ("ascending", "descending")
SCHEDULE_BY = ("hsm_layers", "all_layers")
COVERAGES = ("full", "cycle")
PADS = ("zeros", "learned")


def shift_tokens(x: torch.Tensor, s: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """``out[:, t] = x[:, t − s]`` along dim 1, and ``fill`` (zeros if None) for ``t < s``.

    Never wraps around (no ``torch.roll``): the first ``s`` positions see only the pad.
    """
    B, T = x.shape[:2]
    n = min(s, T)
    if n == 0:
        return x
    rest = x.shape[2:]
    head = x.new_zeros((B, n, *rest)) if fill is None else fill.expand(B, n, *rest)
    return torch.cat([head, x[:, : T - n]], dim=1)


def num_levels(cfg: HierarchicalShiftMixing.Config, ctx: MixerContext) -> int:
    """K: ``cfg.levels``, or the least K with ``base^K >= max_seq_len`` (at least 1)."""
    if cfg.levels is not None:
        return cfg.levels
    K = 0
    while cfg.base**K < ctx.max_seq_len:
        K += 1
    return max(K, 1)


def schedule_place(cfg: HierarchicalShiftMixing.Config, ctx: MixerContext) -> tuple[int, int]:
    """``(p, n)``: this layer's schedule position and how many layers advance the schedule (the
    stack's HSM layers for ``schedule_by: hsm_layers``, else all its layers)."""
    if cfg.schedule_by == "hsm_layers" and ctx.kind_idx is not None:
        return ctx.kind_idx, ctx.kind_count or ctx.n_layers
    return ctx.layer_idx, ctx.n_layers


def levels_per_layer(cfg: HierarchicalShiftMixing.Config, ctx: MixerContext) -> int:
    """k: the levels one layer reads at once; 1 for ``coverage: cycle``, else ``⌈K / n⌉``."""
    if cfg.coverage == "cycle":
        return 1
    return -(-num_levels(cfg, ctx) // schedule_place(cfg, ctx)[1])


def layer_radix(cfg: HierarchicalShiftMixing.Config, ctx: MixerContext) -> int:
    """r = ``base^k``: the inputs of a token, itself and ``r − 1`` copies ``j·d`` back."""
    return int(cfg.base ** levels_per_layer(cfg, ctx))


def layer_shifts(cfg: HierarchicalShiftMixing.Config, ctx: MixerContext) -> tuple[int, ...]:
    """The stride d of each channel/head group of the layer ``ctx`` describes: the group reads
    ``u_{t−j·d}`` for ``j < layer_radix`` (module docstring, "schedule")."""
    K, k = num_levels(cfg, ctx), levels_per_layer(cfg, ctx)
    p = schedule_place(cfg, ctx)[0]
    G = cfg.shift_groups
    if cfg.coverage == "cycle":
        chunks, slots = K, [(p * G + g) % K for g in range(G)]
    else:
        chunks = -(-K // k)
        slots = [(p + g) % chunks for g in range(G)]
    if cfg.schedule == "descending":
        slots = [chunks - 1 - c for c in slots]
    return tuple(cfg.base ** min(c * k, K - k) for c in slots)


def _unmasked_pairs(T: int, d: int, r: int) -> int:
    """``Σ_{j<r} max(0, T − j·d)``: the (query, key) pairs of one group that are not pads."""
    m = min(r - 1, (T - 1) // d)
    return (m + 1) * T - d * m * (m + 1) // 2


@dataclass
class ShiftRingState:
    """Decoding state of one HSM layer: ``t`` tokens consumed so far and, per shifted stream
    (``u``; or keys and values) and group, a ring buffer ``(B, capacity, ...)``: token ``s`` lives
    in slot ``s mod capacity``, where capacity = ``min((b − 1)·d_g, max_len)``."""

    t: int
    max_len: int | None
    rings: list[list[torch.Tensor]] = field(default_factory=list)


@register_mixer("hsm")
class HierarchicalShiftMixing(TokenMixer):
    """Each token mixed with ``base − 1`` copies shifted back by ``j·d``; d set by the depth."""

    @dataclass(frozen=True, kw_only=True)
    class Config(MixerConfig):
        mixing: Literal["ab", "gated", "pair_softmax", "pair_mlp"] = "ab"
        """how a token is combined with its shifted copies [R] (module docstring)"""
        ab_weights: Literal["channel", "head", "scalar"] = "channel"
        """``ab`` only: one (a, b) per channel, per head or for the whole layer [R]"""
        n_heads: int = 4
        """heads of ``pair_softmax`` and of ``ab_weights: head``"""
        base: int = 2
        """shifts are powers of ``base``; a layer reads ``base − 1`` shifted copies [R]"""
        schedule: Literal["ascending", "descending"] = "ascending"
        """shift order with depth [R]"""
        coverage: Literal["full", "cycle"] = "full"
        """full: the K levels are dealt out over the stack's HSM layers, ⌈K/n⌉ per layer, so
        every offset below base^K is reachable at any depth [R]; cycle: one level per layer,
        cycling (the earlier schedule; with fewer layers than levels most offsets are missed)"""
        levels: int | None = None
        """K, the schedule's length; None = ⌈log_base max_seq_len⌉"""
        schedule_by: Literal["hsm_layers", "all_layers"] = "hsm_layers"
        """which layers advance the schedule: only HSM layers (hybrids keep 1, 2, 4, …) or all"""
        shift_groups: int = 1
        """channel (``pair_softmax``: head) groups per layer, each with its own shift [R]"""
        pad: Literal["zeros", "learned"] = "zeros"
        """what a shift reads before the start: zeros (masked keys for pair_softmax) or learned"""
        pair_mlp_ratio: float = 1.0
        """``pair_mlp`` only: hidden width as a multiple of d_model"""
        bias: bool = False
        """bias on the gate / projections / MLP linears"""

        def __post_init__(self) -> None:
            require(self.mixing in MIXINGS, "mixing", self.mixing, "one of " + ", ".join(MIXINGS))
            require(
                self.ab_weights in AB_WEIGHTS,
                "ab_weights",
                self.ab_weights,
                "one of " + ", ".join(AB_WEIGHTS),
            )
            require(self.n_heads >= 1, "n_heads", self.n_heads, "an integer >= 1")
            require(self.base >= 2, "base", self.base, "an integer >= 2")
            require(
                self.schedule in SCHEDULES,
                "schedule",
                self.schedule,
                "one of " + ", ".join(SCHEDULES),
            )
            require(
                self.coverage in COVERAGES,
                "coverage",
                self.coverage,
                "one of " + ", ".join(COVERAGES),
            )
            require(
                self.levels is None or self.levels >= 1,
                "levels",
                self.levels,
                "null (⌈log_base max_seq_len⌉) or an integer >= 1",
            )
            require(
                self.schedule_by in SCHEDULE_BY,
                "schedule_by",
                self.schedule_by,
                "one of " + ", ".join(SCHEDULE_BY),
            )
            require(self.shift_groups >= 1, "shift_groups", self.shift_groups, "an integer >= 1")
            require(self.pad in PADS, "pad", self.pad, "one of " + ", ".join(PADS))
            require(self.pair_mlp_ratio > 0, "pair_mlp_ratio", self.pair_mlp_ratio, "a number > 0")

        @property
        def uses_heads(self) -> bool:
            return self.mixing == "pair_softmax" or (
                self.mixing == "ab" and self.ab_weights == "head"
            )

        def check(self, ctx: MixerContext, seq_len: int | None = None) -> None:
            D = ctx.d_model
            if self.uses_heads and D % self.n_heads:
                raise ConfigError("n_heads", self.n_heads, f"a divisor of d_model={D}")
            if self.mixing == "pair_softmax":
                if self.n_heads % self.shift_groups:
                    raise ConfigError(
                        "shift_groups",
                        self.shift_groups,
                        f"a divisor of n_heads={self.n_heads} (pair_softmax groups whole heads)",
                    )
            elif D % self.shift_groups:
                raise ConfigError("shift_groups", self.shift_groups, f"a divisor of d_model={D}")

    cfg: Config
    summary = (
        "Hierarchical Shift Mixing (method reconstructed from the abstract): each token mixed "
        "with copies shifted back by d = base^level(depth), zero-padded"
    )
    complexity = "O(T·D)"
    decode_state_formula = "(b−1)·d·D ring buffer (×2 for pair_softmax)"
    supports_decode = True

    def __init__(self, cfg: Config, ctx: MixerContext) -> None:
        super().__init__(cfg, ctx)
        D = ctx.d_model
        self.shifts = layer_shifts(cfg, ctx)
        #: inputs per token: itself and ``radix − 1`` copies (``base`` for coverage: cycle)
        self.radix = b = layer_radix(cfg, ctx)
        self.n_heads = cfg.n_heads
        self.head_dim = D // cfg.n_heads
        if cfg.mixing == "ab":
            C = {"channel": D, "head": cfg.n_heads, "scalar": 1}[cfg.ab_weights]
            self.a = nn.Parameter(torch.empty(C))
            self.b = nn.Parameter(torch.empty(b - 1, C))
        elif cfg.mixing == "gated":
            self.gate = nn.Linear(b * D, (b - 1) * D, bias=cfg.bias)
        elif cfg.mixing == "pair_softmax":
            # the same names as the attention mixers, so weights can be shared with them
            self.qkv = nn.Linear(D, 3 * D, bias=cfg.bias)
            self.out = nn.Linear(D, D, bias=cfg.bias)
        else:
            hidden = max(1, round(cfg.pair_mlp_ratio * D))
            self.inp = nn.Linear(b * D, hidden, bias=cfg.bias)
            self.act = nn.GELU()
            self.out = nn.Linear(hidden, D, bias=cfg.bias)
        if cfg.pad == "learned":
            if cfg.mixing == "pair_softmax":
                self.pad_k = nn.Parameter(torch.empty(cfg.n_heads, self.head_dim))
                self.pad_v = nn.Parameter(torch.empty(cfg.n_heads, self.head_dim))
            else:
                self.pad = nn.Parameter(torch.empty(D))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.cfg.mixing == "ab":
            # near the mean of the b inputs; random so that channels differ
            nn.init.normal_(self.a, mean=1.0 / self.radix, std=0.02)
            nn.init.normal_(self.b, mean=1.0 / self.radix, std=0.02)
        for pad in self._fills():
            if pad is not None:  # learned pads start like a token embedding
                nn.init.normal_(pad, std=0.02)

    # ---- the shifted streams: u (or keys and values), with per-group shifts ----

    def _fills(self) -> list[torch.Tensor | None]:
        """Pad value of each shifted stream."""
        if self.cfg.mixing == "pair_softmax":
            if self.cfg.pad == "learned":
                return [self.pad_k, self.pad_v]
            return [None, None]
        return [self.pad if self.cfg.pad == "learned" else None]

    @property
    def _group_dim(self) -> int:
        # u: channel groups (B, T, D); keys/values: head groups (B, T, H, d)
        return -2 if self.cfg.mixing == "pair_softmax" else -1

    def _shift(self, x: torch.Tensor, s: int, fill: torch.Tensor | None) -> torch.Tensor:
        return shift_tokens(x, s, fill)

    def _shifted(self, x: torch.Tensor, j: int, fill: torch.Tensor | None) -> torch.Tensor:
        """Copy j: each group shifted by ``j·d_g`` along T."""
        if len(set(self.shifts)) == 1:
            return self._shift(x, j * self.shifts[0], fill)
        G, dim = len(self.shifts), self._group_dim
        fills = [None] * G if fill is None else list(fill.chunk(G, dim=dim))
        parts = [
            self._shift(xg, j * d, fg)
            for xg, fg, d in zip(x.chunk(G, dim=dim), fills, self.shifts, strict=True)
        ]
        return torch.cat(parts, dim=dim)

    # ---- mixing: shared by forward and step, so both do the same arithmetic ----

    def _weight(self, w: torch.Tensor) -> torch.Tensor:
        """(…, C) ab weights as (…, D) or broadcastable to it."""
        if self.cfg.ab_weights == "head":
            return w.unsqueeze(-1).expand(*w.shape, self.head_dim).reshape(*w.shape[:-1], -1)
        return w

    def _mix(self, copies: list[torch.Tensor]) -> torch.Tensor:
        """copies[0] = u_t, copies[j] = u_{t−j·d}; each (B, n, D)."""
        mixing = self.cfg.mixing
        if mixing == "ab":
            a, b = self._weight(self.a), self._weight(self.b)
            y = a * copies[0]
            for j in range(1, len(copies)):
                y = y + b[j - 1] * copies[j]
            return y
        if mixing == "gated":
            B, n, D = copies[0].shape
            z = self.gate(torch.cat(copies, dim=-1)).unflatten(-1, (len(copies) - 1, D))
            # the oldest copy's logit is fixed at 0 (b = 2: weights σ(z), 1 − σ(z))
            z = torch.cat([z, z.new_zeros(B, n, 1, D)], dim=-2)
            w = torch.softmax(z, dim=-2)
            return (w * torch.stack(copies, dim=-2)).sum(dim=-2)
        return self.out(self.act(self.inp(torch.cat(copies, dim=-1))))

    def _tap_offsets(self, device: torch.device) -> torch.Tensor:
        """(H, b): how far back head h's key j sits, ``j·d_g(h)``."""
        per_group = self.n_heads // len(self.shifts)
        b = self.radix
        offs = [[j * d for j in range(b)] for d in self.shifts for _ in range(per_group)]
        return torch.tensor(offs, device=device)

    def _attend(
        self,
        q: torch.Tensor,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        pos: torch.Tensor,
    ) -> torch.Tensor:
        """Per head, softmax over the b keys; q and keys/values (B, n, H, d); pos (n,)."""
        B, n, H, d = q.shape
        k = torch.stack(keys, dim=-1)  # (B, n, H, d, b)
        v = torch.stack(values, dim=-2)  # (B, n, H, b, d)
        s = (q.unsqueeze(-2) @ k).squeeze(-2) * (1.0 / math.sqrt(d))  # (B, n, H, b)
        if self.cfg.pad == "zeros":
            valid = pos[:, None, None] >= self._tap_offsets(q.device)  # (n, H, b)
            s = s.masked_fill(~valid, float("-inf"))  # key j = 0 is always valid
        o = (torch.softmax(s, dim=-1).unsqueeze(-2) @ v).squeeze(-2)  # (B, n, H, d)
        return self.out(o.reshape(B, n, H * d))

    def _qkv(self, x_BnD: torch.Tensor) -> tuple[torch.Tensor, ...]:
        B, n, _ = x_BnD.shape
        return self.qkv(x_BnD).view(B, n, 3, self.n_heads, self.head_dim).unbind(2)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        b, fills = self.radix, self._fills()
        if self.cfg.mixing == "pair_softmax":
            q, k, v = self._qkv(x_BTD)
            keys = [k] + [self._shifted(k, j, fills[0]) for j in range(1, b)]
            values = [v] + [self._shifted(v, j, fills[1]) for j in range(1, b)]
            pos = torch.arange(x_BTD.shape[1], device=x_BTD.device)
            return self._attend(q, keys, values, pos)
        return self._mix([x_BTD] + [self._shifted(x_BTD, j, fills[0]) for j in range(1, b)])

    # ---- incremental decoding: a ring buffer per stream and group ----

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> ShiftRingState:
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len must be >= 1 or None, got {max_len}")
        G = len(self.shifts)
        if self.cfg.mixing == "pair_softmax":
            group_shapes = [(self.n_heads // G, self.head_dim)] * 2
        else:
            group_shapes = [(self.ctx.d_model // G,)]
        rings = []
        for shape in group_shapes:
            per_group = []
            for d in self.shifts:
                cap = (self.radix - 1) * d
                cap = cap if max_len is None else min(cap, max_len)
                per_group.append(torch.zeros(batch, cap, *shape, dtype=dtype, device=device))
            rings.append(per_group)
        return ShiftRingState(t=0, max_len=max_len, rings=rings)

    def _read(
        self, state: ShiftRingState, stream: int, j: int, fill: torch.Tensor | None
    ) -> torch.Tensor:
        """Copy j of a stream at the current token, from the rings: (B, 1, ...)."""
        G, dim = len(self.shifts), self._group_dim
        fills = [None] * G if fill is None else list(fill.chunk(G, dim=dim))
        parts = []
        for ring, fg, d in zip(state.rings[stream], fills, self.shifts, strict=True):
            src = state.t - j * d
            if src >= 0:
                slot = src % ring.shape[1]
                parts.append(ring[:, slot : slot + 1])
            elif fg is None:
                parts.append(ring.new_zeros(ring.shape[0], 1, *ring.shape[2:]))
            else:
                parts.append(fg.expand(ring.shape[0], 1, *ring.shape[2:]))
        return torch.cat(parts, dim=dim) if G > 1 else parts[0]

    def _write(self, state: ShiftRingState, stream: int, x: torch.Tensor) -> None:
        G, dim = len(self.shifts), self._group_dim
        for ring, xg in zip(state.rings[stream], x.chunk(G, dim=dim), strict=True):
            ring[:, state.t % ring.shape[1]] = xg[:, 0]

    def step(self, x_B1D: torch.Tensor, state: ShiftRingState) -> tuple[torch.Tensor, Any]:
        if state.max_len is not None and state.t >= state.max_len:
            raise ValueError(f"decoding state was sized for max_len={state.max_len} tokens")
        b, fills = self.radix, self._fills()
        if self.cfg.mixing == "pair_softmax":
            q, k, v = self._qkv(x_B1D)
            keys = [k] + [self._read(state, 0, j, fills[0]) for j in range(1, b)]
            values = [v] + [self._read(state, 1, j, fills[1]) for j in range(1, b)]
            pos = torch.tensor([state.t], device=x_B1D.device)
            y = self._attend(q, keys, values, pos)
            streams = [k, v]
        else:
            y = self._mix([x_B1D] + [self._read(state, 0, j, fills[0]) for j in range(1, b)])
            streams = [x_B1D]
        # written after reading: the slot of token t may hold the oldest copy just read
        for i, s in enumerate(streams):
            self._write(state, i, s)
        state.t += 1
        return y, state

    # ---- costs ----

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        assert isinstance(cfg, cls.Config)
        D, T, b = ctx.d_model, seq_len, layer_radix(cfg, ctx)
        if cfg.mixing == "ab":
            return MixerFlops(0, 0, 0, elementwise=(2 * b - 1) * T * D)
        if cfg.mixing == "gated":
            return MixerFlops(2 * T * b * D * (b - 1) * D, 0, 0, elementwise=(2 * b - 1) * T * D)
        if cfg.mixing == "pair_mlp":
            h = max(1, round(cfg.pair_mlp_ratio * D))
            return MixerFlops(2 * T * b * D * h + 2 * T * h * D, 0, 0)
        shifts = layer_shifts(cfg, ctx)
        if cfg.pad == "zeros":
            pairs = sum(_unmasked_pairs(T, d, b) for d in shifts)
            exact = 4 * (D // len(shifts)) * pairs
        else:
            exact = 4 * D * b * T
        return MixerFlops(8 * T * D * D, core_exact=exact, core_dense=4 * D * b * T)

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        assert isinstance(cfg, cls.Config)
        shifts, b = layer_shifts(cfg, ctx), layer_radix(cfg, ctx)
        width = ctx.d_model // len(shifts) * (2 if cfg.mixing == "pair_softmax" else 1)
        return sum(min(seq_len, (b - 1) * d) * width for d in shifts)

    @classmethod
    def flop_exponent(cls, cfg: MixerConfig) -> float:
        """A lone layer (n = 1): with ``coverage: full`` it reads ``max_seq_len − 1`` copies."""
        return cls.stack_flop_exponent(cfg, MixerContext(d_model=1))

    @classmethod
    def stack_flop_exponent(cls, cfg: MixerConfig, ctx: MixerContext) -> float:
        """Linear at a fixed ``max_seq_len``; when it grows with T, ``coverage: full`` reads
        ``base^⌈K/n⌉ − 1 ≈ T^(1/n)`` copies per layer: ``T^(1 + 1/n)`` for n HSM layers."""
        assert isinstance(cfg, cls.Config)
        if cfg.coverage == "cycle" or cfg.levels is not None:
            return 1.0
        return 1.0 + 1.0 / schedule_place(cfg, ctx)[1]

    @classmethod
    def reads(
        cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int, rows_T: torch.Tensor
    ) -> torch.Tensor:
        assert isinstance(cfg, cls.Config)
        r = layer_radix(cfg, ctx)
        return offset_reads(rows_T, (j * d for d in layer_shifts(cfg, ctx) for j in range(r)))

    @classmethod
    def layer_info(cls, cfg: MixerConfig, ctx: MixerContext) -> dict[str, Any]:
        assert isinstance(cfg, cls.Config)
        info = {"shifts": list(layer_shifts(cfg, ctx)), "levels": num_levels(cfg, ctx)}
        if cfg.coverage == "full":
            info["copies"] = layer_radix(cfg, ctx) - 1
        return info

    # ---- conformance hooks (the suite builds layer 0 of a 1-layer stack, max_seq_len 256) ----

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        C = cls.Config
        cyc = {"coverage": "cycle"}
        return [
            C(**cyc),  # ab per channel, shift 1
            C(ab_weights="head", base=3, shift_groups=2, **cyc),  # copies at 1, 2 / 3, 6
            C(ab_weights="scalar", pad="learned", schedule="descending", levels=4, **cyc),  # 8
            C(mixing="gated", shift_groups=4, **cyc),  # shifts 1, 2, 4, 8
            C(mixing="gated", base=3, pad="learned", bias=True, **cyc),
            C(mixing="pair_softmax", shift_groups=2, **cyc),  # head groups at shifts 1, 2
            C(
                mixing="pair_softmax",
                n_heads=2,
                pad="learned",
                schedule="descending",
                levels=3,
                **cyc,
            ),
            C(mixing="pair_mlp", base=4, shift_groups=2, pair_mlp_ratio=0.5, **cyc),  # 1, 4
            # coverage full, one layer: all K levels at once (copies 1 … base^K − 1)
            C(levels=3),  # copies 1 … 7
            C(mixing="gated", base=3, levels=2, shift_groups=2),  # copies 1 … 8, both groups
            C(mixing="pair_softmax", levels=3, pad="learned", schedule="descending"),
            C(mixing="pair_mlp", levels=2, pair_mlp_ratio=0.5),
        ]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        # a shift beyond the sequence: every shifted key is a masked pad, so each token attends
        # only itself, as does a window of one
        far = seq_len.bit_length() + 1
        return [
            (
                cls.Config(
                    mixing="pair_softmax",
                    n_heads=2,
                    schedule="descending",
                    levels=far,
                    coverage="cycle",
                ),
                "sliding_window",
                SlidingWindowAttention.Config(n_heads=2, window=1),
            ),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [
            ({"mixing": "pairsoftmax"}, "mixing"),
            ({"ab_weights": "row"}, "ab_weights"),
            ({"n_heads": 0}, "n_heads"),
            ({"base": 1}, "base"),
            ({"schedule": "random"}, "schedule"),
            ({"levels": 0}, "levels"),
            ({"schedule_by": "layers"}, "schedule_by"),
            ({"coverage": "partial"}, "coverage"),
            ({"shift_groups": 0}, "shift_groups"),
            ({"pad": "reflect"}, "pad"),
            ({"pair_mlp_ratio": 0.0}, "pair_mlp_ratio"),
        ]
