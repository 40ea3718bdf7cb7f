"""Full causal multi-head softmax attention (Vaswani et al., 2017), the quadratic baseline.

Computed by ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``, which picks a
Flash/memory-efficient kernel where one exists. Cost per layer (docs/architectures.md, "Softmax
attention"): projections ``8·T·D²``; core ``4·D·T²`` dense-masked, ``2·D·T(T+1)`` exact.
Incremental decoding keeps the usual KV cache (``init_state``/``step``), ``2·D·t`` numbers at
step t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from archsearch.mixers._attention import AttentionConfig, AttentionMixer
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops
from archsearch.mixers._registry import register_mixer


@register_mixer("softmax")
class SoftmaxAttention(AttentionMixer):
    """Causal multi-head attention over the whole prefix."""

    @dataclass(frozen=True, kw_only=True)
    class Config(AttentionConfig):
        pass

    summary = "full causal multi-head attention (SDPA)"
    complexity = "O(T²·D)"
    decode_state_formula = "2·D·T (KV cache)"
    supports_decode = True

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    @classmethod
    def flop_exponent(cls, cfg: MixerConfig) -> float:
        return 2.0

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> dict:
        """Empty KV cache; it grows by 2·D numbers per token (``decode_state``)."""
        return self._kv_cache_init()

    def step(self, x_B1D: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        """One token at position ``state["pos"]``; equals ``forward`` on the whole prefix there."""
        return self._kv_cache_step(x_B1D, state)

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        D, T = ctx.d_model, seq_len
        return MixerFlops(
            projections=cls.projection_flops(D, T),
            core_exact=4 * D * (T * (T + 1) // 2),
            core_dense=4 * D * T * T,
        )

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        return 2 * ctx.d_model * seq_len
