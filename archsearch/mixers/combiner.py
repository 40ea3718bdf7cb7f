"""Combiner (Ren, Dai, Dai, Yang, Leskovec, Schuurmans, Dai; NeurIPS 2021, arXiv 2107.05768).

Full-support causal attention at sub-quadratic cost (docs/architectures.md, "Combiner"). Every
query ``i`` scores a small *direct* set exactly and the rest of its past as a few *spans*; a span
``Ω`` enters the query's softmax once, through a pooled key ``k_Ω``, and brings its *local
expectation* ``v̄_Ω = Σ_{j∈Ω} softmax_j(q_Ω·k_j/√d) v_j``. Direct and span logits share **one**
softmax per query, so the effective distribution ``q(j|i)`` is positive on every ``j ≤ i``, zero
on ``j > i``, and sums to 1. Positions are 0-indexed; ``s``/``m`` are clamped to ``T``.

This file is the layer: config, validation, projections, and a table :data:`VARIANTS` that maps
each ``variant`` to its kernel, dot counts, decode state and the fields it does not read. The
kernels, their dot counts and a dense reference of each live in :mod:`archsearch.ops.combiner`:

* ``fixed``, block ``s``: own block directly, one span per earlier block; the only variant with
  incremental decoding (:meth:`CombinerAttention.init_state`, :meth:`CombinerAttention.step`);
* ``logsparse``: ``{i}``, ``{i−1}`` for odd ``i``, and the Fenwick decomposition of ``[0, i)``;
* ``axial``, row length ``m``: own row directly, one row summary per earlier row, whose key is set
  by ``row_summary``: ``proj`` (JAX default) ``W_k2·LN(x[r',c] + W_p·concat_heads(v̄[r',c]))``;
  ``wsum`` the row-attention-weighted sum of keys; ``wsum_proj`` that sum through the ``proj``
  pipeline; ``none`` the raw key ``k[r', c]``. RoPE (when on) rotates the projected keys at
  position ``(r', c)``;
* ``mixture``, row length ``m``: own column and own row directly; vertical, top-left and
  top-right spans; ``mixture = "joint"`` (official code, one softmax) or ``"average"`` (the
  paper's §3.3: ½ of two plans' softmaxes; same matmuls, same FLOPs).

``block_size`` is ``s`` or ``m``: a positive int, or ``"sqrt"`` for ``s = m = max(1, ⌊√T⌋)`` at
every sequence length ``T`` (the paper's choice; O(T^1.5·D) core work at any ``T``). One helper,
:meth:`CombinerAttention.Config.block_len`, resolves it wherever the block is needed. With
``"sqrt"`` the block of a forward call depends on the call's length, so the output at ``i`` of a
length-``T`` call depends on ``T`` (never on tokens after ``i``); the decoder of variant fixed
uses the block of the length it is made for (``max_len``, else ``ctx.max_seq_len``).

Cost per layer (FLOPs for one sequence; a multiply-add = 2; docs/costs.md, "FLOP conventions"):
projections ``8·T·D²``, plus ``4·D²·(n−1)·m`` for the ``proj``/``wsum_proj`` summary keys of axial;
core ``2·D`` per *dot* (one ``d``-wide product; a scored pair is two dots), dots per head from the
kernel's ``*_dots`` function: fixed ≈ ``2·T·(s + T/s)`` (``8·D·T^1.5`` core at ``s = √T``),
logsparse ≈ ``2·T·log2 T``, axial ≈ ``3·T·m + 2·T·n``, mixture ≈ ``8·T·(m + n)``. Pooling, softmax,
masking, LayerNorm and RoPE are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archsearch.errors import require
from archsearch.mixers._attention import AttentionConfig, AttentionMixer
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops
from archsearch.mixers._registry import register_mixer
from archsearch.mixers.softmax import SoftmaxAttention
from archsearch.ops.combiner import (
    FixedDecodeState,
    axial_attention,
    axial_dots,
    fixed_attention,
    fixed_decode_init,
    fixed_decode_step,
    fixed_dots,
    logsparse_attention,
    logsparse_dots,
    logsparse_levels,
    mixture_attention,
    mixture_dots,
)

Variant = Literal["fixed", "logsparse", "axial", "mixture"]
Pool = Literal["max", "mean"]
RowSummary = Literal["proj", "wsum", "wsum_proj", "none"]
MixtureMode = Literal["joint", "average"]
BlockSize = int | Literal["sqrt"]

_DEFAULT_BLOCK = 128

#: the default a field keeps in a variant that does not read it, and the error's "allowed" text
_UNUSED_FIELDS: dict[str, tuple[object, str]] = {
    "block_size": (_DEFAULT_BLOCK, f"the default {_DEFAULT_BLOCK}: {{variant}} has no block size"),
    "pool": ("max", "'max': {variant} does not pool"),
    "row_summary": ("proj", "the default 'proj': row_summary applies to variant axial only"),
    "mixture": ("joint", "the default 'joint': mixture applies to variant mixture only"),
}


@register_mixer("combiner")
class CombinerAttention(AttentionMixer):
    """Combiner attention: direct terms + span summaries under one joint softmax."""

    @dataclass(frozen=True, kw_only=True)
    class Config(AttentionConfig):
        variant: Variant = "fixed"
        """fixed | logsparse | axial (row-major) | mixture (docs/architectures.md, "Combiner")"""
        block_size: BlockSize = _DEFAULT_BLOCK
        """block length s (fixed) or row length m (axial, mixture): an integer >= 1, or 'sqrt'
        for max(1, ⌊√T⌋) at each sequence length T (cost is lowest near √T: O(T^1.5·D));
        logsparse has no block and keeps the default"""
        pool: Pool = "max"
        """span summary pooling of keys and queries (prefix/suffix pooling for mixture);
        axial does not pool and keeps the default"""
        row_summary: RowSummary = "proj"
        """axial only: the key of a row summary (TF row_summary); proj/wsum_proj add W_p, a
        LayerNorm and W_k2"""
        mixture: MixtureMode = "joint"
        """mixture only: joint (official code, one softmax) or average (paper, ½ per plan)"""

        def __post_init__(self) -> None:
            super().__post_init__()
            require(
                self.variant in VARIANTS, "variant", self.variant, "one of " + ", ".join(VARIANTS)
            )
            b = self.block_size
            ok = b == "sqrt" or (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
            require(ok, "block_size", b, "an integer >= 1 or 'sqrt'")
            unused = VARIANTS[self.variant].unused
            for name, (default, allowed) in _UNUSED_FIELDS.items():
                value = getattr(self, name)
                ok = name not in unused or value == default
                require(ok, name, value, allowed.format(variant=self.variant))

        def block_len(self, seq_len: int) -> int:
            """The block length s (row length m) used for a sequence of ``seq_len`` tokens:
            ``block_size``, or ``max(1, ⌊√seq_len⌋)`` for ``'sqrt'``. Not clamped to
            ``seq_len`` (the kernels clamp an int block larger than T)."""
            if isinstance(self.block_size, int):
                return self.block_size
            return max(1, math.isqrt(seq_len))  # "sqrt"

        @property
        def projected_keys(self) -> bool:
            return self.variant == "axial" and self.row_summary in ("proj", "wsum_proj")

    cfg: Config
    summary = (
        "Combiner (Ren et al. 2021): full-support attention, direct terms + span summaries in "
        "one softmax; variants fixed, logsparse, axial, mixture"
    )
    complexity = "O(T·(s + T/s)·D), O(T^1.5·D) at s = √T (block_size: sqrt); logsparse O(T·log T·D)"
    decode_state_formula = "fixed 2·D·(s + T/s), 4·D·√T at s = √T; others O(T·D)"
    #: not every config decodes: :meth:`supports_decode_for` says which (variant fixed)
    supports_decode = False

    def __init__(self, cfg: Config, ctx: MixerContext) -> None:
        super().__init__(cfg, ctx)
        D = ctx.d_model
        if cfg.projected_keys:
            # Combiner-Axial summary keys: k̃ = W_k2·LN(x + W_p·concat_heads(v̄))
            self.summary_proj = nn.Linear(D, D, bias=cfg.bias)
            self.summary_norm = nn.LayerNorm(D, bias=cfg.bias)
            self.summary_key = nn.Linear(D, D, bias=cfg.bias)

    @classmethod
    def supports_decode_for(cls, cfg: MixerConfig) -> bool:
        assert isinstance(cfg, cls.Config)
        return VARIANTS[cfg.variant].decodes

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        q, k, v = self._project(x_BTD)
        block = self.cfg.block_len(x_BTD.shape[1])
        return self._merge(VARIANTS[self.cfg.variant].attend(self, x_BTD, q, k, v, block))

    def _summary_keys(self, x_BTD: torch.Tensor, m: int, pre_BHPmd: torch.Tensor) -> torch.Tensor:
        """Axial ``proj``: k̃ = W_k2·LN(x + W_p·concat_heads(pre)) for rows 0..n-2, (B,H,P,m,d)."""
        B, H, P, _, d = pre_BHPmd.shape
        pre = pre_BHPmd.permute(0, 2, 3, 1, 4).reshape(B, P * m, H * d)
        h = self.summary_norm(x_BTD[:, : P * m] + self.summary_proj(pre))
        k_bar = self.summary_key(h).view(B, P * m, H, d).transpose(1, 2)  # (B,H,P·m,d)
        if self.use_rope:
            k_bar = self._rope(k_bar)  # a fresh key at position (r', c)
        return k_bar.reshape(B, H, P, m, d)

    # ---- incremental decoding (variant fixed) ----

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> FixedDecodeState:
        """Empty decoding state (variant fixed only). The state grows by one pooled key and one
        summary per finished block, so ``max_len`` needs no pre-allocation; it fixes the block
        for ``block_size: sqrt`` (``⌊√max_len⌋``, or ``⌊√ctx.max_seq_len⌋`` when None), so that
        :meth:`step` reproduces ``forward`` on sequences of ``max_len`` tokens."""
        if not self.supports_decode_for(self.cfg):
            raise NotImplementedError(
                f"incremental decoding is implemented for variant 'fixed' only, "
                f"not {self.cfg.variant!r}"
            )
        p = self.qkv.weight
        block = self.cfg.block_len(self.ctx.max_seq_len if max_len is None else max_len)
        return fixed_decode_init(
            batch, self.n_heads, self.head_dim, block, dtype or p.dtype, device or p.device
        )

    def step(
        self, x_B1D: torch.Tensor, state: FixedDecodeState
    ) -> tuple[torch.Tensor, FixedDecodeState]:
        """One token: ``y_B1D`` equals ``forward`` at position ``state.pos``; returns new state."""
        if not self.supports_decode_for(self.cfg):
            raise NotImplementedError("incremental decoding is implemented for variant 'fixed'")
        assert x_B1D.shape[1] == 1, "step() takes one token: x of shape (B, 1, D)"
        q, k, v = self._project(x_B1D, state.pos)
        y, new = fixed_decode_step(q, k, v, state, self.cfg.pool)
        return self._merge(y), new

    # ---- costs ----

    @classmethod
    def flop_exponent(cls, cfg: MixerConfig) -> float:
        """logsparse T·log T (1); a block that grows as √T gives T^1.5; a fixed block T²/s (2)."""
        assert isinstance(cfg, cls.Config)
        if VARIANTS[cfg.variant].log_cost:
            return 1.0
        return 1.5 if cfg.block_size == "sqrt" else 2.0

    @classmethod
    def core_dots(cls, cfg: Config, seq_len: int) -> tuple[int, int]:
        """(exact, dense) dots per head; core FLOPs are ``2·D`` per dot."""
        return VARIANTS[cfg.variant].dots(cfg, seq_len, cfg.block_len(seq_len))

    @classmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        assert isinstance(cfg, cls.Config)
        D, T = ctx.d_model, seq_len
        exact, dense = cls.core_dots(cfg, T)
        proj = cls.projection_flops(D, T)
        if cfg.projected_keys:
            m = min(cfg.block_len(T), T)
            proj += 4 * D * D * (-(-T // m) - 1) * m  # W_p and W_k2 on rows 0..n-2
        return MixerFlops(projections=proj, core_exact=2 * D * exact, core_dense=2 * D * dense)

    @classmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        """Numbers a token-by-token decoder holds after ``seq_len`` tokens (per sequence).

        fixed (implemented): open block K/V + its pooled query + (k_Ω, v̄_Ω) per finished
        block. The others are what such a decoder would need (docs/architectures.md,
        "Combiner"): logsparse raw K/V (large spans are summarised from them) + the ≤ ⌈log2 T⌉
        live span summaries; axial (k̃, v̄) per position of finished rows + q, k, v (and x for the
        projected keys) of the open row; mixture raw K/V (column summaries re-attend whole
        columns), the left and right row summaries (k, v each) of finished rows, per-column
        pooled key, pooled query and summary, and the open row's queries (for its suffix
        summaries).

        With ``block_size: sqrt`` the block is that of ``seq_len`` (a decoder made with
        ``max_len = seq_len``), so the count is not monotone in ``seq_len`` (15 -> 16 changes s
        from 3 to 4: 5 summaries become 4).
        """
        assert isinstance(cfg, cls.Config)
        return VARIANTS[cfg.variant].decode_state(cfg, ctx.d_model, seq_len, cfg.block_len(seq_len))

    # ---- conformance hooks ----

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        C = cls.Config
        return [
            C(n_heads=2, variant="fixed", block_size=4),
            C(n_heads=2, variant="fixed", block_size=5, pool="mean"),
            C(n_heads=2, variant="logsparse"),
            C(n_heads=4, variant="logsparse", pool="mean"),
            C(n_heads=2, variant="axial", block_size=5),
            C(n_heads=2, variant="axial", block_size=4, row_summary="none"),
            C(n_heads=2, variant="axial", block_size=6, row_summary="wsum"),
            C(n_heads=2, variant="axial", block_size=5, row_summary="wsum_proj"),
            C(n_heads=2, variant="mixture", block_size=5),
            C(n_heads=2, variant="mixture", block_size=4, pool="mean", mixture="average"),
            # s = m = ⌊√T⌋ at every T (decoding: the block of max_len)
            C(n_heads=2, variant="fixed", block_size="sqrt"),
            C(n_heads=2, variant="fixed", block_size="sqrt", pool="mean"),
            C(n_heads=2, variant="axial", block_size="sqrt"),
            C(n_heads=2, variant="mixture", block_size="sqrt"),
        ]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        C, T = cls.Config, seq_len
        full = SoftmaxAttention.Config(n_heads=2)
        return [
            # s = 1: every earlier token is its own span (k_Ω = k_j, v̄ = v_j); s = T: all direct
            (C(n_heads=2, variant="fixed", block_size=1), "softmax", full),
            (C(n_heads=2, variant="fixed", block_size=1, pool="mean"), "softmax", full),
            (C(n_heads=2, variant="fixed", block_size=T), "softmax", full),
            # one row: everything is direct (no row summaries, so no summary-key parameters)
            (C(n_heads=2, variant="axial", block_size=T, row_summary="none"), "softmax", full),
            (C(n_heads=2, variant="mixture", block_size=T), "softmax", full),
            # one column: own column above + self is the whole prefix
            (C(n_heads=2, variant="mixture", block_size=1), "softmax", full),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, object], str]]:
        return [
            *super().invalid_configs(),
            ({"variant": "routing"}, "variant"),
            ({"block_size": 0}, "block_size"),
            ({"block_size": "cube"}, "block_size"),
            ({"block_size": 2.5}, "block_size"),
            ({"variant": "logsparse", "block_size": "sqrt"}, "block_size"),
            ({"pool": "sum"}, "pool"),
            ({"variant": "logsparse", "block_size": 16}, "block_size"),
            ({"variant": "axial", "pool": "mean"}, "pool"),
            ({"variant": "fixed", "row_summary": "wsum"}, "row_summary"),
            ({"variant": "axial", "mixture": "average"}, "mixture"),
        ]


# ---------------------------------------------------------------------------------------------
# per-variant dispatch: kernel, dots, decode state, the fields a variant does not read

Config = CombinerAttention.Config
#: (layer, x, q, k, v, block) -> (B, H, T, d): the variant's kernel on projected q, k, v
Attend = Callable[
    [CombinerAttention, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor
]


@dataclass(frozen=True)
class VariantOps:
    """What one Combiner variant plugs into the layer."""

    attend: Attend
    #: (cfg, T, block) -> (exact, dense) dots per head
    dots: Callable[[Config, int, int], tuple[int, int]]
    #: (cfg, D, T, block) -> numbers a decoder holds after T tokens
    decode_state: Callable[[Config, int, int, int], int]
    #: fields this variant does not read; they must keep their defaults (``_UNUSED_FIELDS``)
    unused: tuple[str, ...] = ()
    #: init_state/step implemented (the conformance suite checks them against forward)
    decodes: bool = False
    #: FLOPs ∝ T·log T whatever the block (else T^1.5 with a √T block, T² with a fixed one)
    log_cost: bool = False


def _axial(
    layer: CombinerAttention,
    x_BTD: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block: int,
) -> torch.Tensor:
    cfg = layer.cfg
    if not cfg.projected_keys:
        return axial_attention(q, k, v, block, cfg.row_summary)
    m = min(block, x_BTD.shape[1])

    def key_fn(k_wsum: torch.Tensor | None, v_bar: torch.Tensor) -> torch.Tensor:
        return layer._summary_keys(x_BTD, m, v_bar if k_wsum is None else k_wsum)

    return axial_attention(q, k, v, block, cfg.row_summary, key_fn)


def _fixed_state(cfg: Config, D: int, T: int, b: int) -> int:
    done, r = divmod(T, b)
    return 2 * D * (done + r) + (D if r else 0)


def _axial_state(cfg: Config, D: int, T: int, b: int) -> int:
    done, r = divmod(T, b)
    return 2 * D * b * done + (4 if cfg.projected_keys else 3) * D * r


def _mixture_state(cfg: Config, D: int, T: int, b: int) -> int:
    done, r = divmod(T, b)
    return 2 * D * T + 4 * D * b * done + 3 * D * min(b, T) + D * r


VARIANTS: dict[str, VariantOps] = {
    "fixed": VariantOps(
        attend=lambda layer, x, q, k, v, block: fixed_attention(q, k, v, block, layer.cfg.pool),
        dots=lambda cfg, T, block: fixed_dots(T, block),
        decode_state=_fixed_state,
        unused=("row_summary", "mixture"),
        decodes=True,
    ),
    "logsparse": VariantOps(
        attend=lambda layer, x, q, k, v, block: logsparse_attention(q, k, v, layer.cfg.pool),
        dots=lambda cfg, T, block: logsparse_dots(T),
        decode_state=lambda cfg, D, T, b: 2 * D * (T + logsparse_levels(T)),
        unused=("block_size", "row_summary", "mixture"),
        log_cost=True,
    ),
    "axial": VariantOps(
        attend=_axial,
        dots=lambda cfg, T, block: axial_dots(T, block, wsum=cfg.row_summary.startswith("wsum")),
        decode_state=_axial_state,
        unused=("pool", "mixture"),
    ),
    "mixture": VariantOps(
        attend=lambda layer, x, q, k, v, block: mixture_attention(
            q, k, v, block, layer.cfg.pool, layer.cfg.mixture == "average"
        ),
        dots=lambda cfg, T, block: mixture_dots(T, block),
        decode_state=_mixture_state,
        unused=("row_summary",),
    ),
}
