"""Shared pieces of the softmax-attention mixers: config fields, projections, blocked kernels.

The blocked kernels only ever call ``scaled_dot_product_attention`` on blocks, never on a dense
T×T mask, so their work (and what a FLOP counter sees) is what the cost formulas say.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, require
from archsearch.mixers._base import MixerConfig, MixerContext, TokenMixer
from archsearch.mixers._rope import apply_rope, rope_cos_sin


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


# ---------------------------------------------------------------------------------------------
# Blocked kernels and their exact pair counts (one function computes both, so they cannot drift)


def segment_runs(T: int, group: int, first: int = 0) -> list[tuple[int, int, int]]:
    """Split [0, T) into a first segment [0, first), then groups of ``group``, the last shorter.

    Returns runs ``(start, length, count)`` of ``count`` consecutive equal-length segments.
    """
    runs: list[tuple[int, int, int]] = []
    pos = 0
    if first > 0:
        f = min(first, T)
        runs.append((0, f, 1))
        pos = f
    n_full = (T - pos) // group
    if n_full:
        runs.append((pos, group, n_full))
        pos += n_full * group
    if pos < T:
        runs.append((pos, T - pos, 1))
    return runs


def grouped_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: int, first: int = 0
) -> torch.Tensor:
    """Causal attention inside contiguous segments (see :func:`segment_runs`); (B, h, T, d)."""
    B, h, T, d = q.shape
    outs = []
    for start, length, count in segment_runs(T, group, first):
        end = start + length * count

        def blocks(
            t: torch.Tensor,
            start: int = start,
            end: int = end,
            count: int = count,
            length: int = length,
        ) -> torch.Tensor:
            return t[:, :, start:end].reshape(B, h * count, length, d)

        o = F.scaled_dot_product_attention(blocks(q), blocks(k), blocks(v), is_causal=True)
        outs.append(o.reshape(B, h, count * length, d))
    return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]


def grouped_pairs(T: int, group: int, first: int = 0) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of :func:`grouped_causal_attention`."""
    exact = dense = 0
    for _, length, count in segment_runs(T, group, first):
        exact += count * length * (length + 1) // 2
        dense += count * length * length
    return exact, dense


def _window_mask(n_q: int, window: int, device: torch.device) -> torch.Tensor:
    # query i sits at key index i + window; it sees keys j with i < j <= i + window
    i = torch.arange(n_q, device=device)[:, None]
    j = torch.arange(n_q + window, device=device)[None, :]
    return (j > i) & (j <= i + window)


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int
) -> torch.Tensor:
    """Each query sees itself and the ``window - 1`` keys before it; blocks of ``window`` queries
    attend their own block and the previous one, so the work is O(T·window)."""
    B, h, T, d = q.shape
    W = window
    if T <= W:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # // and %, not divmod: under JIT tracing (fvcore) sizes are 0-d tensors, which lack divmod
    n, r = T // W, T % W
    outs = [F.scaled_dot_product_attention(q[:, :, :W], k[:, :, :W], v[:, :, :W], is_causal=True)]
    if n > 1:
        qb = q[:, :, W : n * W].reshape(B, h * (n - 1), W, d)

        def two_blocks(t: torch.Tensor) -> torch.Tensor:
            prev = t[:, :, : (n - 1) * W].reshape(B, h, n - 1, W, d)
            cur = t[:, :, W : n * W].reshape(B, h, n - 1, W, d)
            return torch.cat([prev, cur], dim=3).reshape(B, h * (n - 1), 2 * W, d)

        mask = _window_mask(W, W, q.device)
        o = F.scaled_dot_product_attention(qb, two_blocks(k), two_blocks(v), attn_mask=mask)
        outs.append(o.reshape(B, h, (n - 1) * W, d))
    if r:
        lo = n * W - W
        mask = _window_mask(r, W, q.device)
        o = F.scaled_dot_product_attention(
            q[:, :, n * W :], k[:, :, lo:], v[:, :, lo:], attn_mask=mask
        )
        outs.append(o)
    return torch.cat(outs, dim=2)


def sliding_window_pairs(T: int, window: int) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of :func:`sliding_window_attention`."""
    W = window
    if T <= W:
        return T * (T + 1) // 2, T * T
    # exact: position i sees min(i + 1, W) keys
    exact = W * (W + 1) // 2 + (T - W) * W
    n, r = divmod(T, W)
    dense = W * W + (n - 1) * W * 2 * W + r * (W + r)
    return exact, dense
