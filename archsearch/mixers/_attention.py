"""Shared pieces of the softmax-attention mixers: config fields, Q/K/V/O projections and RoPE.

The attention kernels themselves live in :mod:`archsearch.ops` (each beside a dense reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
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
    rope: bool = True
    """apply the model's RoPE (pos_encoding: rope) in this layer; false: no rotary embedding
    here (the layer sees positions only through the input, e.g. learned absolute embeddings)"""

    def __post_init__(self) -> None:
        require(self.n_heads >= 1, "n_heads", self.n_heads, "an integer >= 1")

    def uses_rope(self, ctx: MixerContext) -> bool:
        """Whether q and k are rotated: the model uses RoPE and this layer does not opt out."""
        return ctx.rope and self.rope

    def check(self, ctx: MixerContext, seq_len: int | None = None) -> None:
        if ctx.d_model % self.n_heads:
            raise ConfigError("n_heads", self.n_heads, f"a divisor of d_model={ctx.d_model}")
        if self.uses_rope(ctx) and (ctx.d_model // self.n_heads) % 2:
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
        self.use_rope = cfg.uses_rope(ctx)

    def _project(
        self, x_BTD: torch.Tensor, pos0: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q, K, V as (B, H, T, d) for positions ``pos0 .. pos0+T-1`` (RoPE on q and k)."""
        B, T, _ = x_BTD.shape
        q, k, v = self.qkv(x_BTD).view(B, T, 3, self.n_heads, self.head_dim).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if self.use_rope:
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

    # ---- full-attention KV cache (softmax; S2-Attn with ``inference: full``) ----

    def _kv_cache_init(self) -> dict[str, Any]:
        """Empty KV cache; it grows by 2·D numbers per token."""
        return {"pos": 0, "k": None, "v": None}

    def _kv_cache_step(
        self, x_B1D: torch.Tensor, state: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """One token at position ``state["pos"]`` attending every cached token and itself: full
        causal attention on the whole prefix at that position."""
        t = state["pos"]
        q, k, v = self._project(x_B1D, t)  # (B, H, 1, d)
        K = k if state["k"] is None else torch.cat([state["k"], k], dim=2)
        V = v if state["v"] is None else torch.cat([state["v"], v], dim=2)
        y = F.scaled_dot_product_attention(q, K, V)  # the newest token sees every cached one
        return self._merge(y), {"pos": t + 1, "k": K, "v": V}

    @staticmethod
    def projection_flops(d_model: int, seq_len: int) -> int:
        """Q, K, V and O: four D×D linears on T tokens, ``8·T·D²``."""
        return 8 * seq_len * d_model * d_model

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        return [cls.Config(n_heads=2)]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [({"n_heads": 0}, "n_heads"), ({"rope": "no"}, "rope")]
