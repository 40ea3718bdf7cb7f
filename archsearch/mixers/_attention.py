"""Shared pieces of the softmax-attention mixers: config fields, Q/K/V/O projections and RoPE.

The attention kernels themselves live in :mod:`archsearch.ops` (each beside a dense reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archsearch.errors import ConfigError, require
from archsearch.mixers._base import MixerConfig, MixerContext, TokenMixer
from archsearch.ops.rope import apply_rope, rope_cos_sin


@dataclass(frozen=True, kw_only=True)
class AttentionConfig(MixerConfig):
    """Fields shared by multi-head softmax attention mixers."""

    n_heads: int = 4
    """number of heads; must divide d_model"""
    bias: bool = False
    """bias on the Q/K/V and output projections (GPT-2 uses one)"""

    def __post_init__(self) -> None:
        require(self.n_heads >= 1, "n_heads", self.n_heads, "an integer >= 1")

    def check(self, ctx: MixerContext, seq_len: int | None = None) -> None:
        if ctx.d_model % self.n_heads:
            raise ConfigError("n_heads", self.n_heads, f"a divisor of d_model={ctx.d_model}")
        if ctx.rope and (ctx.d_model // self.n_heads) % 2:
            raise ConfigError(
                "n_heads",
                self.n_heads,
                f"a head width d_model/n_heads that is even for RoPE "
                f"(d_model={ctx.d_model} gives {ctx.d_model // self.n_heads})",
            )


class AttentionMixer(TokenMixer):
    """Q/K/V/O projections (+ optional RoPE) around a subclass's ``attend`` kernel."""

    cfg: AttentionConfig

    def __init__(self, cfg: AttentionConfig, ctx: MixerContext) -> None:
        super().__init__(cfg, ctx)
        D = ctx.d_model
        self.n_heads = cfg.n_heads
        self.head_dim = D // cfg.n_heads
        self.qkv = nn.Linear(D, 3 * D, bias=cfg.bias)
        self.out = nn.Linear(D, D, bias=cfg.bias)

    def _project(
        self, x_BTD: torch.Tensor, pos0: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q, K, V as (B, H, T, d) for positions ``pos0 .. pos0+T-1`` (RoPE on q and k)."""
        B, T, _ = x_BTD.shape
        q, k, v = self.qkv(x_BTD).view(B, T, 3, self.n_heads, self.head_dim).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if self.ctx.rope:
            q, k = self._rope(q, pos0), self._rope(k, pos0)
        return q, k, v

    def _rope(self, t_BHTd: torch.Tensor, pos0: int = 0) -> torch.Tensor:
        pos = torch.arange(pos0, pos0 + t_BHTd.shape[2], device=t_BHTd.device)
        cos, sin = rope_cos_sin(pos, self.head_dim, self.ctx.rope_theta, t_BHTd.dtype)
        return apply_rope(t_BHTd, cos, sin)

    def _merge(self, y_BHTd: torch.Tensor) -> torch.Tensor:
        """Concatenate heads and apply the output projection: (B, H, T, d) -> (B, T, D)."""
        B, _, T, _ = y_BHTd.shape
        return self.out(y_BHTd.transpose(1, 2).reshape(B, T, self.ctx.d_model))

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self._merge(self.attend(*self._project(x_BTD)))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(B, H, T, d) x3 -> (B, H, T, d), causal."""
        raise NotImplementedError

    @staticmethod
    def projection_flops(d_model: int, seq_len: int) -> int:
        """Q, K, V and O: four D×D linears on T tokens, ``8·T·D²``."""
        return 8 * seq_len * d_model * d_model

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        return [cls.Config(n_heads=2)]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [({"n_heads": 0}, "n_heads")]
