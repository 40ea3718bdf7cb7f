"""PerceiverAR (Hawthorne et al., ICML 2022, arXiv 2202.07765) as a structural family.

One causally masked cross-attention reads the whole window of M tokens into N latents, the last N
positions: latent ``a`` sits at position ``p_a = M − N + a`` and sees inputs ``0 .. p_a``. The
``layers`` stack (any registered causal mixer) then runs over the N latents only, and only the N
latent positions are scored (docs/architectures.md, "PerceiverAR"). The family owns the
cross-attention layer::

    E   = Embed(ids)                                   (B, M, D)  (+ learned positions)
    z0  = Linear_z(E[:, M−N:])   (latent_init=linear)   or  E[:, M−N:]  (latent_init=embedding)
    q   = LN_q(z0)·Wq  (RoPE at p_a);  k, v = LN_kv(E)·Wk, Wv  (RoPE at 0..M−1)
    z1  = z0 + Wo·softmax_masked(q kᵀ/√d) v            mask (N, M): j <= M − N + a
    z1  = z1 + MLP(LN(z1))                             width cross_mlp_ratio·D
    z   = layers(z1)                                    any causal mixers, over N rows
    logits = head(LN(z))                               (B, N, V): position p_a predicts p_a + 1

The mask is **bottom-right aligned**. SDPA's ``is_causal=True`` is top-left aligned and would be
wrong for N < M, so the kernel passes an explicit boolean ``(N, M)`` mask (:func:`cross_mask`);
nothing is ever M×M. Dense-masked pairs ``N·M``, exact ``N(M − N) + N(N + 1)/2``
(:func:`cross_pairs`, next to the kernel).

Options (``family: {kind: perceiver_ar, ...}``):

- ``n_latents`` N; a window shorter than N makes every position a latent (N_eff = min(N, T));
- ``cross_heads`` (default: the first latent layer's ``n_heads``), ``cross_mlp_ratio``,
  ``cross_bias`` (bias on the cross Q/K/V/O projections);
- ``cross_dropout``: training-only "cross-attend dropout": a Bernoulli keep-mask over input
  positions, drawn per example and shared by every latent and head. A latent's own position is
  never dropped (as the official processor mask forces its diagonal), so no row is ever empty;
- ``rope_fraction``: RoPE on the first ``rope_fraction`` of each cross-attention head's channels
  (rounded down to an even count); 0 turns it off. The latent layers use their mixers' own RoPE
  (the whole head); RoPE is relative, so their positions 0..N−1 give the same scores as p_a.
- ``latent_init``: ``linear`` (official: ``z0 = Linear_z(E)``, separate LayerNorms for the query
  and the keys/values) or ``embedding`` (MetaMain re-implementation: ``z0 = E``, one LayerNorm).
  With ``embedding`` and ``N = M``, the model *is* a plain pre-LN decoder (tested).

Cost (one window): cross layer projections ``4·M·D²`` (K, V) ``+ 4·N·D²`` (Q, O) ``+ 2·N·D²``
(``Linear_z``, with ``latent_init=linear``, a term easy to leave out), core
``4·D·P_x``, MLP ``4·f_x·N·D²``; then the latent layers at length N; head ``2·N·D·V``. Linear in
M at fixed N. Decode state: the cross K/V of every input (``2·D·M``) plus each latent layer's
state at N.

Cached decoding (``init_state``/``step``) covers the first N tokens of a stream: every token is
one more latent, its query reads the cached cross K/V plus itself, and each latent layer steps
its mixer (reset fill R = N, prompts ≤ N). Going past N needs the official "latent
reset" (a full forward with R < N latents) and is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, require
from archsearch.mixers import MixerFlops, mixer_config, prefix_reads
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.costs import LayerCost, ModelCost, block_costs, head_cost
from archsearch.model.families import FamilyConfig, register_family
from archsearch.model.transformer import (
    MLP,
    Block,
    LanguageModel,
    make_norm,
    mixers_decode,
    stack_reads,
)
from archsearch.ops.rope import apply_rope, rope_cos_sin


def cross_mask(n_latents: int, n_inputs: int, device: torch.device | str) -> torch.Tensor:
    """Boolean ``(N, M)``: latent ``a`` (position ``M − N + a``) sees inputs ``0 .. M − N + a``.

    Bottom-right aligned; row ``a`` has ``M − N + 1 + a`` true entries.
    """
    a = torch.arange(n_latents, device=device)[:, None]
    j = torch.arange(n_inputs, device=device)[None, :]
    return j <= a + (n_inputs - n_latents)


def cross_pairs(n_latents: int, n_inputs: int) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of the cross-attention with :func:`cross_mask`."""
    N, M = n_latents, n_inputs
    return N * (M - N) + N * (N + 1) // 2, N * M


def partial_rope(x_BHTd: torch.Tensor, pos_T: torch.Tensor, rot: int, theta: float) -> torch.Tensor:
    """RoPE on the first ``rot`` channels of each head; the rest pass through."""
    if rot == 0:
        return x_BHTd
    cos, sin = rope_cos_sin(pos_T, rot, theta, x_BHTd.dtype)
    if rot == x_BHTd.shape[-1]:
        return apply_rope(x_BHTd, cos, sin)
    return torch.cat([apply_rope(x_BHTd[..., :rot], cos, sin), x_BHTd[..., rot:]], dim=-1)


@dataclass(frozen=True, kw_only=True)
class PerceiverARConfig(FamilyConfig):
    """PerceiverAR: the family owns the cross-attention; ``layers`` is the latent stack."""

    n_latents: int = 512
    """N: the last N positions are latents (and the only scored ones)"""
    cross_heads: int | None = None
    """heads of the cross-attention; null: the first latent layer's n_heads"""
    cross_mlp_ratio: float = 4.0
    """MLP width of the cross-attention layer, as a multiple of d_model"""
    cross_bias: bool = False
    """bias on the cross-attention Q/K/V/O projections"""
    cross_dropout: float = 0.0
    """training only: probability of dropping an input position from every latent's view"""
    rope_fraction: float = 0.5
    """fraction of each cross head's channels that RoPE rotates (official LM configs: 0.5)"""
    latent_init: Literal["linear", "embedding"] = "linear"
    """linear: z0 = Linear_z(E) (official); embedding: z0 = E (MetaMain re-implementation)"""

    def __post_init__(self) -> None:
        require(self.n_latents >= 1, "n_latents", self.n_latents, "an integer >= 1")
        if self.cross_heads is not None:
            require(self.cross_heads >= 1, "cross_heads", self.cross_heads, "an integer >= 1")
        require(self.cross_mlp_ratio > 0, "cross_mlp_ratio", self.cross_mlp_ratio, "a number > 0")
        require(
            0.0 <= self.cross_dropout < 1.0,
            "cross_dropout",
            self.cross_dropout,
            "a number in [0, 1)",
        )
        require(
            0.0 <= self.rope_fraction <= 1.0,
            "rope_fraction",
            self.rope_fraction,
            "a number in [0, 1]",
        )

    def heads(self, model: ModelConfig) -> int:
        if self.cross_heads is not None:
            return self.cross_heads
        heads = getattr(model.layers[0].mixer, "n_heads", None)
        if heads is None:
            raise ConfigError(
                "family.cross_heads",
                None,
                f"an integer (layers[0].mixer, a {model.layers[0].mixer.kind}, has no n_heads)",
            )
        return int(heads)

    def rotary_dim(self, model: ModelConfig) -> int:
        """Rotated channels per cross head (even); 0 without RoPE."""
        if model.pos_encoding != "rope":
            return 0
        d = model.d_model // self.heads(model)
        return 2 * int(self.rope_fraction * d / 2)

    def check(self, model: ModelConfig) -> None:
        if self.n_latents > model.max_seq_len:
            raise ConfigError(
                "family.n_latents",
                self.n_latents,
                f"an integer in [1, max_seq_len={model.max_seq_len}]",
            )
        H = self.heads(model)
        if model.d_model % H:
            raise ConfigError("family.cross_heads", H, f"a divisor of d_model={model.d_model}")
        if model.pos_encoding == "rope" and self.rope_fraction > 0 and self.rotary_dim(model) == 0:
            raise ConfigError(
                "family.rope_fraction",
                self.rope_fraction,
                f"0, or enough to rotate 2 of the {model.d_model // H} channels of a cross head",
            )

    def n_scored(self, seq_len: int) -> int:
        return min(self.n_latents, seq_len)

    def stack_seq_len(self, seq_len: int) -> int:
        return min(self.n_latents, seq_len)


class CrossAttend(nn.Module):
    """The first layer: N latent queries read all M inputs (bottom-right causal), then an MLP."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        fam = cfg.family
        assert isinstance(fam, PerceiverARConfig)
        D = cfg.d_model
        self.fam, self.theta = fam, cfg.rope_theta
        self.n_heads = fam.heads(cfg)
        self.head_dim = D // self.n_heads
        self.rot = fam.rotary_dim(cfg)
        linear = fam.latent_init == "linear"
        self.z_proj = nn.Linear(D, D, bias=fam.cross_bias) if linear else None
        self.norm_q = make_norm(cfg)
        # official: LN(z0) for the queries and a separate LN(E) for keys/values; with z0 = E
        # (MetaMain) one LayerNorm serves both, as in a pre-LN block
        self.norm_kv = make_norm(cfg) if linear else None
        self.q = nn.Linear(D, D, bias=fam.cross_bias)
        self.kv = nn.Linear(D, 2 * D, bias=fam.cross_bias)
        self.out = nn.Linear(D, D, bias=fam.cross_bias)
        self.norm2 = make_norm(cfg)
        self.mlp = MLP(cfg, hidden=cfg.mlp_hidden(fam.cross_mlp_ratio))
        self.drop = nn.Dropout(cfg.dropout)

    def _heads(self, t_BTD: torch.Tensor) -> torch.Tensor:
        B, T, _ = t_BTD.shape
        return t_BTD.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def _qkv(self, x_BMD: torch.Tensor, n_latents: int, start: int = 0) -> tuple[torch.Tensor, ...]:
        """z0 of the last ``n_latents`` rows, their queries, and keys/values of every row."""
        B, M, D = x_BMD.shape
        e_lat = x_BMD[:, M - n_latents :]
        if self.z_proj is not None:
            z0 = self.z_proj(e_lat)
            q_in, kv_in = self.norm_q(z0), self.norm_kv(x_BMD)  # type: ignore[misc]
        else:
            z0 = e_lat
            kv_in = self.norm_q(x_BMD)
            q_in = kv_in[:, M - n_latents :]
        q = self._heads(self.q(q_in))
        k, v = self.kv(kv_in).view(B, M, 2, self.n_heads, self.head_dim).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        if self.rot:
            pos = torch.arange(start, start + M, device=x_BMD.device)
            q = partial_rope(q, pos[M - n_latents :], self.rot, self.theta)
            k = partial_rope(k, pos, self.rot, self.theta)
        return z0, q, k, v

    def _finish(self, z0: torch.Tensor, y_BHND: torch.Tensor) -> torch.Tensor:
        B, _, N, _ = y_BHND.shape
        z = z0 + self.drop(self.out(y_BHND.transpose(1, 2).reshape(B, N, -1)))
        return z + self.drop(self.mlp(self.norm2(z)))

    def forward(
        self, x_BMD: torch.Tensor, n_latents: int, keep_BM: torch.Tensor | None = None
    ) -> torch.Tensor:
        M = x_BMD.shape[1]
        z0, q, k, v = self._qkv(x_BMD, n_latents)
        mask = cross_mask(n_latents, M, x_BMD.device)  # (N, M)
        if keep_BM is not None:
            # drop whole input positions per example; a latent always keeps its own position
            own = torch.zeros_like(mask)
            own[:, M - n_latents :] = torch.eye(n_latents, dtype=torch.bool, device=mask.device)
            mask = mask[None, None] & (keep_BM[:, None, None, :] | own)  # (B, 1, N, M)
        return self._finish(z0, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

    def step(
        self, x_B1D: torch.Tensor, t: int, cache: tuple[Any, Any]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Token at position t becomes one more latent; it reads the cached inputs and itself."""
        z0, q, k, v = self._qkv(x_B1D, 1, start=t)
        K = k if cache[0] is None else torch.cat([cache[0], k], dim=2)
        V = v if cache[1] is None else torch.cat([cache[1], v], dim=2)
        return self._finish(z0, F.scaled_dot_product_attention(q, K, V)), (K, V)


@register_family("perceiver_ar")
class PerceiverAR(LanguageModel):
    """Cross-attend M inputs into N latents once, then the ``layers`` stack over the latents."""

    Config = PerceiverARConfig
    summary = (
        "PerceiverAR (arXiv 2202.07765): one bottom-right causal cross-attention reads the M-token"
        " window into the last N positions (latents); the layers run over the N latents only"
    )
    complexity = "O(M·N·D + M·D² + Λ·N²·D)"
    decode_state_formula = "2·D·M (cross K/V) + latent layers at N (softmax: 2·D·N each)"
    supports_decode = True
    scored = "last N (latents)"
    uses_layers = (
        "the latent stack (any causal mixers) over N rows; the family owns the cross layer"
    )
    residual_out_suffixes = ("mixer.out", "mlp.fc2", "cross.out")

    @classmethod
    def flop_exponent(cls, cfg: ModelConfig) -> float:
        return 1.0  # the cross layer is linear in M; the latent stack runs over N rows, fixed

    cfg: ModelConfig

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self._build_embeddings(cfg)
        self.cross = CrossAttend(cfg)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self._build_head(cfg)
        self.reset_parameters()

    @property
    def fam(self) -> PerceiverARConfig:
        assert isinstance(self.cfg.family, PerceiverARConfig)
        return self.cfg.family

    @property
    def n_residual_layers(self) -> int:
        return self.cfg.n_layers + 1

    def keep_mask(self, x_BTD: torch.Tensor) -> torch.Tensor | None:
        """Cross-attend dropout: which input positions each example keeps (training only)."""
        p = self.fam.cross_dropout
        if not self.training or p == 0.0:
            return None
        B, T, _ = x_BTD.shape
        return torch.rand(B, T, device=x_BTD.device) >= p

    def hidden(self, x_BTD: torch.Tensor) -> torch.Tensor:
        z = self.cross(x_BTD, self.fam.n_scored(x_BTD.shape[1]), self.keep_mask(x_BTD))
        for block in self.blocks:
            z = block(z)
        return z

    # ---- cached decoding: the first N tokens of a stream ----

    def can_decode(self) -> bool:
        return mixers_decode(self.cfg)

    def decode_limit(self) -> int | None:
        return self.fam.n_latents

    def init_state(self, batch: int, dtype: torch.dtype, device: torch.device | str) -> Any:
        blocks = [b.init_state(batch, dtype, device) for b in self.blocks]
        return {"pos": 0, "cross": (None, None), "blocks": blocks}

    def step(self, idx_B1: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        t = state["pos"]
        if t >= self.fam.n_latents:
            raise ValueError(
                f"cached PerceiverAR decoding covers the first n_latents={self.fam.n_latents} "
                "tokens; longer streams need the latent reset, which is not implemented"
            )
        z, cross = self.cross.step(self.embed(idx_B1, start=t), t, state["cross"])
        states = []
        for block, s in zip(self.blocks, state["blocks"], strict=True):
            z, s = block.step(z, s)
            states.append(s)
        return self.logits(z, 1), {"pos": t + 1, "cross": cross, "blocks": states}

    # ---- receptive field, costs and conformance hooks ----

    @classmethod
    def n_rows(cls, cfg: ModelConfig, seq_len: int) -> int:
        return cfg.n_scored(seq_len)

    @classmethod
    def reads(cls, cfg: ModelConfig, seq_len: int, rows_T: torch.Tensor) -> torch.Tensor:
        """The latent stack over N rows, then the cross layer: latent ``a`` reads inputs
        ``0 .. M − N + a`` (its own position included), so the last latent reads all M."""
        N = cfg.n_scored(seq_len)
        latents = stack_reads(cfg, N, rows_T)
        inputs = torch.zeros(seq_len, dtype=torch.bool)
        inputs[seq_len - N :] = latents
        return prefix_reads(inputs)

    @classmethod
    def cost(cls, cfg: ModelConfig, seq_len: int) -> ModelCost:
        fam = cfg.family
        assert isinstance(fam, PerceiverARConfig)
        D, M = cfg.d_model, seq_len
        N = fam.n_scored(M)
        proj = 4 * M * D * D + 4 * N * D * D  # K, V on all inputs; Q, O on the latents
        if fam.latent_init == "linear":
            proj += 2 * N * D * D  # Linear_z
        exact, dense = cross_pairs(N, M)
        cross = LayerCost(
            index=0,
            kind="perceiver_ar.cross",
            seq_len=N,
            mixer=MixerFlops(proj, 4 * D * exact, 4 * D * dense),
            mlp=4 * N * D * cfg.mlp_hidden(fam.cross_mlp_ratio),
            decode_state=2 * D * M,
            config=fam,
            mlp_ratio=fam.cross_mlp_ratio,
        )
        layers = [cross, *block_costs(cfg, N, first_index=1)]
        return ModelCost(seq_len=M, layers=tuple(layers), head=head_cost(cfg, N))

    @classmethod
    def example_configs(cls) -> list[tuple[ModelConfig, int]]:
        softmax = BlockConfig(mixer=mixer_config("softmax", n_heads=2))
        return [
            (
                ModelConfig(
                    d_model=16,
                    vocab_size=64,
                    max_seq_len=64,
                    family=PerceiverARConfig(n_latents=8, rope_fraction=0.5),
                    layers=(softmax, BlockConfig(mixer=softmax.mixer, mlp_ratio=2.0)),
                ),
                24,
            ),
            (
                ModelConfig(
                    d_model=16,
                    vocab_size=64,
                    max_seq_len=64,
                    pos_encoding="learned",
                    family=PerceiverARConfig(
                        n_latents=8,
                        cross_heads=4,
                        cross_mlp_ratio=2.0,
                        cross_dropout=0.25,
                        cross_bias=True,
                        latent_init="embedding",
                    ),
                    layers=(BlockConfig(mixer=mixer_config("ecp", n_heads=2, segment_len=4)),),
                ),
                21,
            ),
            (
                ModelConfig(
                    d_model=16,
                    vocab_size=64,
                    max_seq_len=64,
                    family=PerceiverARConfig(n_latents=7, rope_fraction=1.0),
                    layers=(
                        BlockConfig(mixer=mixer_config("sliding_window", n_heads=2, window=3)),
                        softmax,
                    ),
                ),
                17,
            ),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[str, str]]:
        def yaml(family: str, d_model: int = 16) -> str:
            return (
                f"d_model: {d_model}\nmax_seq_len: 64\nfamily: {family}\n"
                "layers: [{mixer: {kind: softmax, n_heads: 2}}]\n"
            )

        return [
            (yaml("{kind: perceiver_ar, n_latents: 0}"), "family.n_latents"),
            (yaml("{kind: perceiver_ar, n_latents: 65}"), "family.n_latents"),
            (yaml("{kind: perceiver_ar, cross_dropout: 1.0}"), "family.cross_dropout"),
            (yaml("{kind: perceiver_ar, rope_fraction: 1.5}"), "family.rope_fraction"),
            (yaml("{kind: perceiver_ar, n_latents: 8, cross_heads: 3}"), "family.cross_heads"),
            (yaml("{kind: perceiver_ar, n_latents: 8, latent_init: mlp}"), "family.latent_init"),
            # d = 16/8 = 2 channels per cross head: a fraction of 0.25 rotates none of them
            (
                yaml("{kind: perceiver_ar, n_latents: 8, cross_heads: 8, rope_fraction: 0.25}"),
                "family.rope_fraction",
            ),
            (yaml("{kind: perceiver_ar, n_latents: 8, nlatents: 4}"), "family.nlatents"),
        ]
