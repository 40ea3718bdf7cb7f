"""ECP / LLP pairwise segment attention (Mahmood & Huang, arXiv 2412.06106 v1 "LLP", v2 "ECP").

The sequence is cut into segments of ``m`` tokens. Segment 0 attends itself causally; segment
``σ ≥ 1`` attends the whole previous segment plus itself causally:
``allowed(i, j) = j <= i and j >= m·(⌊i/m⌋ − 1)`` (docs/architectures.md, "LLP and ECP"). Each
window of two segments is a small PerceiverAR with ``m`` latents over ``2m`` inputs, and the loss
covers every position. Context propagates one segment per layer: after ``k`` layers position ``i``
reaches back to ``m·(⌊i/m⌋ − k)``.

Implemented blocked (:func:`archsearch.ops.pairwise_segment.pairwise_segment_attention`),
``(B, H, S, m, 2m)``: each segment's queries attend ``[prev segment, own segment]`` through one
fixed ``(m, 2m)`` mask, so the work is O(T·m·D), never a T×T mask.

Repo quirks (code ``ECPAttention``) are explicit options:
- ``kv_shared`` (default true): keys and values are one projected tensor (K = V);
- ``rope_all_layers`` (default false): the code applies RoPE in layer 0 only, to q and to the
  shared K = V (so values are rotated too); true applies it in every layer;
- ``separate_out0`` (default true): segment 0 has its own output projection.
Ablation ``head_split``: one reading of LLP (a v1 reviewer) shifts the segments in half the heads,
as LongLoRA does; here the last H/2 heads use segment boundaries offset by m/2.

Cost per layer, ``S = T/m`` uniform segments: projections ``6·T·D²`` (K = V) or ``8·T·D²``;
core dense ``4·D·(m² + (S−1)·2m²) = 4·D·T·m·(2 − 1/S)``, exact ``4·D·(T(m+1)/2 + (T−m)·m)``.
Decode state: the K = V of the previous and current segment, ``≤ 2·m·D`` per layer
(``≤ 4·m·D`` without sharing), constant in the stream length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, require
from archsearch.mixers._attention import AttentionConfig
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops, TokenMixer
from archsearch.mixers._reach import interval_reads
from archsearch.mixers._registry import register_mixer
from archsearch.mixers.softmax import SoftmaxAttention
from archsearch.ops.pairwise_segment import pairwise_pairs, pairwise_segment_attention
from archsearch.ops.rope import apply_rope, rope_cos_sin


@register_mixer("ecp")
class PairwiseSegmentAttention(TokenMixer):
    """ECP: each segment attends the previous segment and itself (causally); all heads."""

    @dataclass(frozen=True, kw_only=True)
    class Config(AttentionConfig):
        segment_len: int = 256
        """segment length m = T/S (the paper's code: T = 2048, S = 8, m = 256)"""
        kv_shared: bool = True
        """one projection serves as keys and values (K = V), as in the code"""
        rope_all_layers: bool = False
        """RoPE in every layer; the code applies it in layer 0 only"""
        separate_out0: bool = True
        """segment 0 has its own output projection, as in the code"""
        head_split: bool = False
        """ablation: the last half of the heads use segments shifted by m/2"""

        def __post_init__(self) -> None:
            super().__post_init__()
            require(self.segment_len >= 1, "segment_len", self.segment_len, "an integer >= 1")
            if self.head_split:
                require(
                    self.n_heads % 2 == 0, "n_heads", self.n_heads, "an even number with head_split"
                )
                require(
                    self.segment_len % 2 == 0,
                    "segment_len",
                    self.segment_len,
                    "an even integer with head_split",
                )

        def check(self, ctx: MixerContext, seq_len: int | None = None) -> None:
            super().check(ctx, seq_len)
            if seq_len is not None and seq_len % self.segment_len:
                raise ConfigError(
                    "segment_len",
                    self.segment_len,
                    f"a divisor of the sequence length {seq_len} (ECP needs m·S = T)",
                )

    cfg: Config
    summary = "ECP/LLP pairwise segment attention: each segment sees the previous one + itself"
    complexity = "O(T·m·D)"
    decode_state_formula = "≤ 2·m·D (K = V of two segments; 4·m·D unshared)"
    supports_decode = True

    def __init__(self, cfg: Config, ctx: MixerContext) -> None:
        super().__init__(cfg, ctx)
        D = ctx.d_model
        self.n_heads, self.head_dim = cfg.n_heads, D // cfg.n_heads
        if cfg.kv_shared:
            self.q = nn.Linear(D, D, bias=cfg.bias)
            self.kv = nn.Linear(D, D, bias=cfg.bias)
        else:
            self.qkv = nn.Linear(D, 3 * D, bias=cfg.bias)
        self.out = nn.Linear(D, D, bias=cfg.bias)
        self.out0 = nn.Linear(D, D, bias=cfg.bias) if cfg.separate_out0 else None
        self.use_rope = cfg.uses_rope(ctx) and (cfg.rope_all_layers or ctx.layer_idx == 0)

    # ---- projections shared by forward() and step() ----

    def _project(self, x_BTD: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, ...]:
        B, T, D = x_BTD.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

        if self.cfg.kv_shared:
            q, k = heads(self.q(x_BTD)), heads(self.kv(x_BTD))
        else:
            q, k, v = (heads(t) for t in self.qkv(x_BTD).chunk(3, dim=-1))
        if self.use_rope:
            cos, sin = rope_cos_sin(pos, self.head_dim, self.ctx.rope_theta, q.dtype)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.cfg.kv_shared:
            v = k  # K = V: the code rotates the shared tensor, so values are rotated too
        return q, k, v

    def _output(self, y_BHTd: torch.Tensor, start: int) -> torch.Tensor:
        """Output projection of positions ``start .. start+T-1`` (segment 0 may have its own)."""
        B, _, T, _ = y_BHTd.shape
        y = y_BHTd.transpose(1, 2).reshape(B, T, self.ctx.d_model)
        if self.out0 is None:
            return self.out(y)
        n0 = min(max(self.cfg.segment_len - start, 0), T)  # how many positions lie in segment 0
        parts = [
            p
            for p in (self.out0(y[:, :n0]) if n0 else None, self.out(y[:, n0:]) if n0 < T else None)
            if p is not None
        ]
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        T = x_BTD.shape[1]
        pos = torch.arange(T, device=x_BTD.device)
        q, k, v = self._project(x_BTD, pos)
        m = self.cfg.segment_len
        if self.cfg.head_split:
            a = self.n_heads // 2
            y = torch.cat(
                [
                    pairwise_segment_attention(q[:, :a], k[:, :a], v[:, :a], m, m),
                    pairwise_segment_attention(q[:, a:], k[:, a:], v[:, a:], m, m // 2),
                ],
                dim=1,
            )
        else:
            y = pairwise_segment_attention(q, k, v, m, m)
        return self._output(y, 0)

    # ---- incremental decoding: absolute positions and segment boundaries (position-consistent)

    def _capacity(self, max_len: int | None) -> int:
        cap = 2 * self.cfg.segment_len
        return cap if max_len is None else max(1, min(cap, max_len))

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> dict[str, Any]:
        """A ring buffer of keys/values for ``min(2m, max_len)`` tokens.

        Every query sees at most the previous and its own segment (≤ 2m consecutive positions),
        so slot ``p mod capacity`` never overwrites a key still needed. Attention over a set of
        keys does not depend on their order, so the slots need no sorting.
        """
        shape = (batch, self.n_heads, self._capacity(max_len), self.head_dim)
        state: dict[str, Any] = {"pos": 0, "k": torch.zeros(shape, dtype=dtype, device=device)}
        if not self.cfg.kv_shared:
            state["v"] = torch.zeros(shape, dtype=dtype, device=device)
        return state

    def step(self, x_B1D: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """Process one token at absolute position ``state["pos"]``; equals ``forward`` there.

        Positions and segment boundaries are absolute (RoPE too), so streaming is consistent
        with the full forward pass of the whole prefix.
        """
        t = state["pos"]
        cap = state["k"].shape[2]
        pos = torch.tensor([t], device=x_B1D.device)
        q, k, v = self._project(x_B1D, pos)  # (B, H, 1, d)
        state["k"][:, :, t % cap] = k[:, :, 0]
        if not self.cfg.kv_shared:
            state["v"][:, :, t % cap] = v[:, :, 0]
        K = state["k"]
        V = K if self.cfg.kv_shared else state["v"]
        m = self.cfg.segment_len
        a = self.n_heads // 2 if self.cfg.head_split else self.n_heads
        ys = []
        for heads, offset in ((slice(0, a), 0), (slice(a, self.n_heads), m // 2)):
            if heads.start == heads.stop:
                continue
            # first visible position: the start of the previous segment (boundaries offset)
            seg = (t + offset) // m
            lo = max(0, (seg - 1) * m - offset)
            slots = torch.arange(lo, t + 1, device=x_B1D.device) % cap
            ys.append(
                F.scaled_dot_product_attention(
                    q[:, heads], K[:, heads][:, :, slots], V[:, heads][:, :, slots]
                )
            )
        y = self._output(torch.cat(ys, dim=1), t)
        state["pos"] = t + 1
        return y, state

    # ---- costs ----

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        assert isinstance(cfg, cls.Config)
        D, T, m = ctx.d_model, seq_len, cfg.segment_len
        d = D // cfg.n_heads
        if cfg.head_split:
            a = cfg.n_heads // 2
            ae, ad = pairwise_pairs(T, m, m)
            se, sd = pairwise_pairs(T, m, m // 2)
            exact, dense = 4 * d * a * (ae + se), 4 * d * a * (ad + sd)
        else:
            e, dn = pairwise_pairs(T, m, m)
            exact, dense = 4 * D * e, 4 * D * dn
        n_proj = 3 if cfg.kv_shared else 4
        return MixerFlops(2 * n_proj * T * D * D, exact, dense)

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        assert isinstance(cfg, cls.Config)
        per_token = ctx.d_model if cfg.kv_shared else 2 * ctx.d_model
        return per_token * min(2 * cfg.segment_len, seq_len)

    @classmethod
    def reads(
        cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int, rows_T: torch.Tensor
    ) -> torch.Tensor:
        """Row i reads from ``m·(⌊i/m⌋ − 1)`` on (boundaries offset by m/2 for the second half of
        the heads with ``head_split``), so L layers reach back to ``m·(⌊t/m⌋ − L)``."""
        assert isinstance(cfg, cls.Config)
        m, pos = cfg.segment_len, torch.arange(seq_len)
        offsets = (0, m // 2) if cfg.head_split else (0,)
        out = torch.zeros_like(rows_T)
        for off in offsets:
            lo = (((pos + off) // m - 1) * m - off).clamp(min=0)
            out |= interval_reads(rows_T, lo)
        return out

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        return [
            cls.Config(n_heads=2, segment_len=8),
            cls.Config(n_heads=2, segment_len=5, kv_shared=False, separate_out0=False),
            cls.Config(n_heads=4, segment_len=6, head_split=True, rope_all_layers=True),
        ]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        plain = {"n_heads": 2, "kv_shared": False, "separate_out0": False}
        same = SoftmaxAttention.Config(n_heads=2)
        return [
            # S = 1: one segment is plain causal attention
            (cls.Config(segment_len=seq_len, **plain), "softmax", same),
            # S = 2: segment 1 sees segment 0 whole and itself causally = full causal attention
            (cls.Config(segment_len=(seq_len + 1) // 2, **plain), "softmax", same),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [
            ({"n_heads": 0}, "n_heads"),
            ({"segment_len": 0}, "segment_len"),
            ({"n_heads": 4, "segment_len": 7, "head_split": True}, "segment_len"),
        ]
