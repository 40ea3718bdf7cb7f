"""LongLoRA shifted sparse attention, S2-Attn (Chen et al., arXiv 2309.12307), non-wrapping.

The sequence is cut into groups of ``G`` tokens. The first ``H − s`` heads attend causally inside
aligned groups ``[kG, (k+1)G)``; the last ``s`` heads (LongLoRA: ``s = H/2``) inside groups shifted
by ``G/2``: ``[0, G/2), [G/2, 3G/2), …`` — the official flash path's variable-length boundaries.
The paper's pseudo-code instead rolls the sequence cyclically, which lets the first shifted
positions see the last tokens (a causality leak; docs/architectures.md, "S2-Attn"); this does not
wrap.

Work is blocked (:func:`archsearch.ops.grouped.grouped_causal_attention`): each group is one batch
entry of ``scaled_dot_product_attention(is_causal=True)``, so cost is O(T·G·D). ``forward`` accepts
any T (the last group is then shorter), but configs are validated against the paper's requirement
``G | T`` at a requested sequence length.

Cost per layer: projections ``8·T·D²``; core ``4·d·Σ_heads pairs`` with pairs per head from
:func:`archsearch.ops.grouped.grouped_pairs` (dense ≈ ``4·D·T·G``, exact ≈ ``2·D·T·G``).

``inference: full`` is LongLoRA's recipe (paper §3.2: S2-Attn while fine-tuning, the original
full attention at inference): in train mode the layer computes S2-Attn as above; in eval mode
(held-out evaluation, latency, ``step``) it is full causal softmax attention with the same
weights, and decodes token by token with a KV cache. :meth:`~ShiftedSparseAttention.flops` is
then the training forward (S2); :meth:`~ShiftedSparseAttention.inference_flops` and
``decode_state`` are those of ``softmax``; the layer's label is ``s2attn(infer=full)``. The
default ``inference: s2`` keeps S2-Attn at inference too (docs/architectures.md, "S2-Attn").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError, require
from archsearch.mixers._attention import AttentionConfig, AttentionMixer
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops
from archsearch.mixers._reach import groups_lo, interval_reads, prefix_reads
from archsearch.mixers._registry import register_mixer
from archsearch.mixers.softmax import SoftmaxAttention
from archsearch.ops.grouped import grouped_causal_attention, grouped_pairs


@register_mixer("s2attn")
class ShiftedSparseAttention(AttentionMixer):
    """Group-local causal attention, half the heads on groups shifted by G/2."""

    @dataclass(frozen=True, kw_only=True)
    class Config(AttentionConfig):
        group_size: int = 256
        """tokens per group G (even; must divide the sequence length)"""
        shifted_heads: int | None = None
        """heads on shifted groups; None = half the heads, as in LongLoRA (0 = no shift)"""
        inference: Literal["s2", "full"] = "s2"
        """s2: S2-Attn in training and inference; full: LongLoRA's recipe, S2-Attn in training
        and full causal attention (same weights) in eval mode, evaluation and decoding"""

        def __post_init__(self) -> None:
            super().__post_init__()
            require(
                self.group_size >= 2 and self.group_size % 2 == 0,
                "group_size",
                self.group_size,
                "an even integer >= 2",
            )
            if self.shifted_heads is None:
                require(
                    self.n_heads % 2 == 0,
                    "n_heads",
                    self.n_heads,
                    "an even number when shifted_heads is unset (half the heads shift)",
                )
            else:
                require(
                    0 <= self.shifted_heads <= self.n_heads,
                    "shifted_heads",
                    self.shifted_heads,
                    f"an integer in [0, n_heads={self.n_heads}]",
                )
            require(self.inference in ("s2", "full"), "inference", self.inference, "'s2' or 'full'")

        @property
        def label(self) -> str:
            return "s2attn(infer=full)" if self.inference == "full" else "s2attn"

        @property
        def n_shifted(self) -> int:
            return self.n_heads // 2 if self.shifted_heads is None else self.shifted_heads

        def check(self, ctx: MixerContext, seq_len: int | None = None) -> None:
            super().check(ctx, seq_len)
            if seq_len is not None and seq_len % self.group_size:
                raise ConfigError(
                    "group_size",
                    self.group_size,
                    f"a divisor of the sequence length {seq_len} (S2-Attn needs G | T)",
                )

    cfg: Config
    summary = "LongLoRA S2-Attn: group-local attention, half the heads shifted by G/2 (no wrap)"
    complexity = "O(T·G·D)"
    decode_state_formula = "≤ 2·D·min(G, T); inference: full 2·D·T (KV cache, as LongLoRA)"

    @classmethod
    def supports_decode_for(cls, cfg: MixerConfig) -> bool:
        """Only the LongLoRA recipe decodes (full attention over a KV cache)."""
        assert isinstance(cfg, cls.Config)
        return cfg.inference == "full"

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.cfg.inference == "full" and not self.training:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        G, a = self.cfg.group_size, self.n_heads - self.cfg.n_shifted
        parts = []
        if a:
            parts.append(grouped_causal_attention(q[:, :a], k[:, :a], v[:, :a], G))
        if a < self.n_heads:
            parts.append(grouped_causal_attention(q[:, a:], k[:, a:], v[:, a:], G, first=G // 2))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    # ---- incremental decoding (inference: full) ----

    def _require_full(self) -> None:
        if not self.supports_decode_for(self.cfg):
            raise NotImplementedError(
                "s2attn decodes token by token only with inference: full (LongLoRA's recipe)"
            )

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> dict[str, Any]:
        """Empty KV cache of the full-attention inference layer (``inference: full``)."""
        self._require_full()
        return self._kv_cache_init()

    def step(
        self, x_B1D: torch.Tensor, state: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """One token; equals the eval-mode ``forward`` (full attention) at that position."""
        self._require_full()
        return self._kv_cache_step(x_B1D, state)

    # ---- costs ----

    @classmethod
    def flop_exponent(cls, cfg: MixerConfig) -> float:
        """1 (O(T·G·D)); 2 with ``inference: full``, whose inference forward is full attention."""
        assert isinstance(cfg, cls.Config)
        return 2.0 if cfg.inference == "full" else 1.0

    @classmethod
    def inference_flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        """``inference: full``: those of ``softmax`` at ``seq_len``; else S2's (:meth:`flops`)."""
        assert isinstance(cfg, cls.Config)
        if cfg.inference == "full":
            return SoftmaxAttention.flops(cfg, ctx, seq_len)
        return cls.flops(cfg, ctx, seq_len)

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        """The S2 forward (what training runs, whatever ``inference`` says)."""
        assert isinstance(cfg, cls.Config)
        D, T, G = ctx.d_model, seq_len, cfg.group_size
        d, s = D // cfg.n_heads, cfg.n_shifted
        ae, ad = grouped_pairs(T, G)
        se, sd = grouped_pairs(T, G, first=G // 2)
        a = cfg.n_heads - s
        return MixerFlops(
            projections=cls.projection_flops(D, T),
            core_exact=4 * d * (a * ae + s * se),
            core_dense=4 * d * (a * ad + s * sd),
        )

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        assert isinstance(cfg, cls.Config)
        if cfg.inference == "full":
            return SoftmaxAttention.decode_state(cfg, ctx, seq_len)  # the KV cache
        # K and V of the tokens in each head's current group; a group holds at most G tokens
        return 2 * ctx.d_model * min(cfg.group_size, seq_len)

    @classmethod
    def reads(
        cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int, rows_T: torch.Tensor
    ) -> torch.Tensor:
        """Aligned heads read their group, shifted heads their shifted group: a layer reaches
        back G/2 more than the one above it. With ``inference: full`` the model is evaluated and
        deployed with full causal attention, so it reads the whole prefix."""
        assert isinstance(cfg, cls.Config)
        if cfg.inference == "full":
            return prefix_reads(rows_T)
        G, s = cfg.group_size, cfg.n_shifted
        out = torch.zeros_like(rows_T)
        if s < cfg.n_heads:
            out |= interval_reads(rows_T, groups_lo(seq_len, G))
        if s:
            out |= interval_reads(rows_T, groups_lo(seq_len, G, first=G // 2))
        return out

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        return [
            cls.Config(n_heads=2, group_size=8),
            cls.Config(n_heads=4, group_size=6, shifted_heads=1),
            cls.Config(n_heads=2, group_size=8, inference="full"),
        ]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        G = seq_len + seq_len % 2  # one group covering the whole sequence
        return [
            (
                cls.Config(n_heads=2, group_size=G, shifted_heads=0),
                "softmax",
                SoftmaxAttention.Config(n_heads=2),
            ),
            # a group of 2T: the shifted groups [0, T) and the aligned group both cover everything
            (
                cls.Config(n_heads=2, group_size=2 * G),
                "softmax",
                SoftmaxAttention.Config(n_heads=2),
            ),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [
            *super().invalid_configs(),
            ({"group_size": 7}, "group_size"),
            ({"n_heads": 3}, "n_heads"),
            ({"n_heads": 4, "shifted_heads": 5}, "shifted_heads"),
            ({"inference": "dense"}, "inference"),
        ]
