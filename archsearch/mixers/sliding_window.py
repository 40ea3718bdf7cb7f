"""Sliding-window causal attention (local attention as in Longformer / Mistral).

Query ``i`` attends keys ``j`` with ``i - window < j <= i`` (docs/architectures.md, "Sliding-window
attention"). The blocked kernel, :func:`archsearch.ops.sliding_window.sliding_window_attention`:
queries in blocks of ``window`` attend their own block and the previous one through a fixed
``(window, 2·window)`` mask, so work and memory are O(T·window), never a T×T mask.

Cost per layer: projections ``8·T·D²``; core exact ``4·D·Σ_i min(i+1, W)``; dense (blocks as
computed) ``4·D·(W² + (n−1)·2W² + r·(W+r))`` for ``T = n·W + r > W``, ``4·D·T²`` for ``T <= W``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archsearch.errors import require
from archsearch.mixers._attention import AttentionConfig, AttentionMixer
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops
from archsearch.mixers._reach import interval_reads
from archsearch.mixers._registry import register_mixer
from archsearch.mixers.softmax import SoftmaxAttention
from archsearch.ops.sliding_window import sliding_window_attention, sliding_window_pairs


@register_mixer("sliding_window")
class SlidingWindowAttention(AttentionMixer):
    """Each token attends the last ``window`` tokens (itself included)."""

    @dataclass(frozen=True, kw_only=True)
    class Config(AttentionConfig):
        window: int = 256
        """keys per query, the query itself included"""

        def __post_init__(self) -> None:
            super().__post_init__()
            require(self.window >= 1, "window", self.window, "an integer >= 1")

    cfg: Config
    summary = "causal attention to the last `window` tokens, computed in blocks"
    complexity = "O(T·W·D)"
    decode_state_formula = "2·D·min(W, T)"

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return sliding_window_attention(q, k, v, self.cfg.window)

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        assert isinstance(cfg, cls.Config)
        exact, dense = sliding_window_pairs(seq_len, cfg.window)
        D = ctx.d_model
        return MixerFlops(cls.projection_flops(D, seq_len), 4 * D * exact, 4 * D * dense)

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        assert isinstance(cfg, cls.Config)
        return 2 * ctx.d_model * min(cfg.window, seq_len)

    @classmethod
    def reads(
        cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int, rows_T: torch.Tensor
    ) -> torch.Tensor:
        assert isinstance(cfg, cls.Config)
        return interval_reads(rows_T, torch.arange(seq_len) - (cfg.window - 1))

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        return [cls.Config(n_heads=2, window=8), cls.Config(n_heads=4, window=5)]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        same = SoftmaxAttention.Config(n_heads=2)
        return [
            (cls.Config(n_heads=2, window=seq_len), "softmax", same),
            (cls.Config(n_heads=2, window=seq_len + 3), "softmax", same),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [*super().invalid_configs(), ({"window": 0}, "window")]
