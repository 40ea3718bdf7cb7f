"""Mahmood & Huang's context/latent variants V1, V2, V3 (arXiv 2412.06106 v1) as families.

The window of T tokens is split into a context ``[0, h)`` and ``l`` latents ``[h, T)``,
``h = T − l``. Every layer runs a "double attention" (docs/architectures.md,
"Mahmood & Huang V1/V2/V3"; code ``MetaMain/ECPTransformer``, classes ``DoubleAttention``,
``sSplitAttention``, ``CompressedDoubleAttention``)::

    q = Wq·LN(x);  kv = LN_d(Wkv·LN(x))          K = V shared, per-head LayerNorm (code)
    context rows  i < C : attend context keys only, bidirectionally (V2: only inside their own
                          segment of s = C/n)
    latent rows   a     : attend every context key and latents 0..a (causal)
    out = Wo·concat(ctx_out, lat_out);  x = x + out;  x = x + MLP(LN(x))

Only the l latent positions are scored (loss on latents only). The context is bidirectional
inside, which is legal because every context position precedes every latent, but it means the
context cannot be cached: **none of V1–V3 decodes incrementally**; each new token re-runs the
whole window (a full forward pass per token).

- ``v1_double``: the context attends itself in every layer (C = h); RoPE in every layer (code).
- ``v2_split``: the context attends only inside ``n_ctx_segments`` equal segments; RoPE in layer
  0 only (code).
- ``v3_compress``: layer 0 attends as V1, then compresses the context rows along the sequence
  by a learned ``Linear(h → p)`` (per channel, before Wo, as the code does) to ``p =
  compressed_len`` slots; later layers run on ``p + l`` rows (C = p). RoPE in layer 0 only: the
  slots have no positions. The window length is fixed (``h`` is a weight shape), so T must equal
  ``max_seq_len``.

**V3's residual, fixed deliberately** (``aligned_residual: true``, the default). The code adds
``x[:, :p+l]`` (the embeddings of the *first* p + l positions) to the layer-0 output
``[slots, latents]``, so latent ``a`` gets the residual of position ``p + a`` instead of its own
``h + a``. No future leaks (p + a < h + a), but the residual is misaligned. With the fix
the latents get their own ``x[:, h:]`` and the slots get no residual (they are a new sequence of
pooled rows); ``aligned_residual: false`` reproduces the code.

Repo quirks are explicit options: ``kv_shared`` (K = V; false: separate K and V projections),
``kv_norm`` (the per-head LayerNorm LN_d on the keys/values, applied after RoPE as in the code;
with separate K and V it normalises both), ``rope_all_layers`` (V1, V2). The code's *separate
output projection for segment 0* is an ECP quirk (``ecp`` mixer option ``separate_out0``); V1–V3
have one output projection in the code, so there is no such option here. RoPE rotates q and the
shared K = V, so values are rotated too (code).

What ``layers`` gives: one item per layer; its mixer must be ``softmax``, of which ``n_heads``
and ``bias`` (Q/KV/O projections) are used; ``mlp_ratio`` as usual. The family owns the block.

Costs per layer (core FLOPs ``4·D·P``), with ``C`` context rows and ``U = C + l`` rows in:
pairs dense ``C·s + l·U``, exact ``C·s + l·C + l(l+1)/2`` (``s = C`` except V2: ``s = C/n``);
projections ``2·U·D²`` (Q) ``+ 2·U·D²`` (K = V; ``4·U·D²`` unshared) ``+ 2·U_out·D²`` (O), where
V3's layer 0 outputs ``U_out = p + l`` rows and adds the sequence projection ``2·h·p·D``
(not ``6·L·D²`` for that layer: the code applies Wo after compressing, to p + l rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, require
from archsearch.mixers import MixerFlops, mixer_config, prefix_reads
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.costs import LayerCost, ModelCost, head_cost
from archsearch.model.families import FamilyConfig, register_family
from archsearch.model.perceiver_ar import cross_mask
from archsearch.model.transformer import MLP, LanguageModel, make_norm
from archsearch.ops.rope import apply_rope, rope_cos_sin


def double_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_ctx: int, n_segments: int = 1
) -> torch.Tensor:
    """(B, H, U, d) x3 -> (B, H, U, d). Rows ``< n_ctx`` (context) attend the context keys of
    their own segment (``n_segments`` equal ones) bidirectionally; the other rows (latents)
    attend every context key and the latents up to themselves."""
    B, H, U, d = q.shape
    C, n = n_ctx, n_segments
    s = C // n

    def segments(t: torch.Tensor) -> torch.Tensor:
        return t[:, :, :C].reshape(B, H * n, s, d)

    ctx = F.scaled_dot_product_attention(segments(q), segments(k), segments(v))
    lat = F.scaled_dot_product_attention(
        q[:, :, C:], k, v, attn_mask=cross_mask(U - C, U, q.device)
    )
    return torch.cat([ctx.reshape(B, H, C, d), lat], dim=2)


def double_pairs(n_ctx: int, n_latents: int, n_segments: int = 1) -> tuple[int, int]:
    """(exact, dense) query-key pairs per head of :func:`double_attention`."""
    C, l = n_ctx, n_latents
    ctx = C * (C // n_segments)  # bidirectional blocks: every pair is computed and used
    return ctx + l * C + l * (l + 1) // 2, ctx + l * (C + l)


@dataclass(frozen=True, kw_only=True)
class _ContextLatentConfig(FamilyConfig):
    n_latents: int = 512
    """l: the last l positions are latents (and the only scored ones); the rest is context"""
    kv_shared: bool = True
    """keys and values are one projected tensor (K = V), as in the code"""
    kv_norm: bool = True
    """per-head LayerNorm on the keys/values (after RoPE), as in the code"""

    def __post_init__(self) -> None:
        require(self.n_latents >= 1, "n_latents", self.n_latents, "an integer >= 1")

    def check(self, model: ModelConfig) -> None:
        if self.n_latents >= model.max_seq_len:
            raise ConfigError(
                "family.n_latents",
                self.n_latents,
                f"an integer in [1, max_seq_len - 1 = {model.max_seq_len - 1}] "
                "(the context needs at least one token)",
            )
        for i, block in enumerate(model.layers):
            if block.mixer.kind != "softmax":
                raise ConfigError(
                    f"layers[{i}].mixer.kind",
                    block.mixer.kind,
                    f"softmax ({self.kind} owns its attention block and takes n_heads and "
                    "bias from a softmax mixer config)",
                )

    def check_seq_len(self, model: ModelConfig, seq_len: int) -> None:
        if self.n_latents >= seq_len:
            raise ConfigError(
                "family.n_latents",
                self.n_latents,
                f"less than the sequence length {seq_len} (the context needs at least one token)",
            )

    def n_scored(self, seq_len: int) -> int:
        return self.n_latents

    # per-layer structure, shared by the module and the cost model
    def segments(self) -> int:
        return 1

    def rope_in_layer(self, layer_idx: int) -> bool:
        return layer_idx == 0

    def compress_len(self, layer_idx: int) -> int | None:
        """Slots the context is compressed to after this layer (V3 layer 0), else None."""
        return None


@dataclass(frozen=True, kw_only=True)
class V1Config(_ContextLatentConfig):
    """V1 "DoubleAttention": context self-attention + latent cross-attention in every layer."""

    rope_all_layers: bool = True
    """RoPE in every layer (the code's V1); false: layer 0 only"""

    def rope_in_layer(self, layer_idx: int) -> bool:
        return self.rope_all_layers or layer_idx == 0


@dataclass(frozen=True, kw_only=True)
class V2Config(_ContextLatentConfig):
    """V2 "sSplitAttention": the context attends only inside its own segment."""

    n_ctx_segments: int = 2
    """n: the context h = T − l is cut into n equal segments (code example: n = 2)"""
    rope_all_layers: bool = False
    """RoPE in every layer; the code applies it in layer 0 only"""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_ctx_segments >= 1, "n_ctx_segments", self.n_ctx_segments, "an integer >= 1")

    def check_seq_len(self, model: ModelConfig, seq_len: int) -> None:
        super().check_seq_len(model, seq_len)
        h = seq_len - self.n_latents
        if h % self.n_ctx_segments:
            raise ConfigError(
                "family.n_ctx_segments",
                self.n_ctx_segments,
                f"a divisor of the context length h = T − n_latents = {h}",
            )

    def segments(self) -> int:
        return self.n_ctx_segments

    def rope_in_layer(self, layer_idx: int) -> bool:
        return self.rope_all_layers or layer_idx == 0


@dataclass(frozen=True, kw_only=True)
class V3Config(_ContextLatentConfig):
    """V3 "CompressedDoubleAttention": layer 0 compresses the context to p slots."""

    compressed_len: int = 512
    """p: context slots after layer 0 (the code: p = T/4)"""
    aligned_residual: bool = True
    """latents keep their own residual x[:, h:] and the slots none; false: the code's x[:, :p+l]"""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.compressed_len >= 1, "compressed_len", self.compressed_len, "an integer >= 1")

    def check(self, model: ModelConfig) -> None:
        super().check(model)
        h = model.max_seq_len - self.n_latents
        if self.compressed_len > h:
            raise ConfigError(
                "family.compressed_len",
                self.compressed_len,
                f"an integer in [1, h = max_seq_len − n_latents = {h}]",
            )

    def check_seq_len(self, model: ModelConfig, seq_len: int) -> None:
        if seq_len != model.max_seq_len:
            raise ConfigError(
                "seq_len",
                seq_len,
                f"exactly max_seq_len={model.max_seq_len} (v3_compress projects a fixed context "
                f"length h = max_seq_len − n_latents = {model.max_seq_len - self.n_latents})",
            )
        super().check_seq_len(model, seq_len)

    def compress_len(self, layer_idx: int) -> int | None:
        return self.compressed_len if layer_idx == 0 else None


class DoubleAttention(nn.Module):
    """One layer's attention: Q, shared K = V (or K and V), LN_d, RoPE, the two-part kernel,
    optional sequence compression of the context rows (V3 layer 0), Wo."""

    def __init__(self, cfg: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        fam = cfg.family
        assert isinstance(fam, _ContextLatentConfig)
        D, mixer = cfg.d_model, cfg.layers[layer_idx].mixer
        self.fam, self.theta = fam, cfg.rope_theta
        self.n_heads = int(mixer.n_heads)  # type: ignore[attr-defined]
        self.head_dim = D // self.n_heads
        bias = bool(mixer.bias)  # type: ignore[attr-defined]
        self.q = nn.Linear(D, D, bias=bias)
        self.kv = nn.Linear(D, D if fam.kv_shared else 2 * D, bias=bias)
        self.kv_norm = nn.LayerNorm(self.head_dim) if fam.kv_norm else None
        self.out = nn.Linear(D, D, bias=bias)
        self.use_rope = cfg.pos_encoding == "rope" and fam.rope_in_layer(layer_idx)
        p = fam.compress_len(layer_idx)
        self.compress = nn.Linear(cfg.max_seq_len - fam.n_latents, p) if p else None

    def _heads(self, t_BUD: torch.Tensor) -> torch.Tensor:
        B, U, _ = t_BUD.shape
        return t_BUD.view(B, U, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x_BUD: torch.Tensor) -> torch.Tensor:
        B, U, D = x_BUD.shape
        C = U - self.fam.n_latents
        q = self._heads(self.q(x_BUD))
        if self.fam.kv_shared:
            k = self._heads(self.kv(x_BUD))
        else:
            k, v = (self._heads(t) for t in self.kv(x_BUD).chunk(2, dim=-1))
        if self.use_rope:
            cos, sin = rope_cos_sin(
                torch.arange(U, device=x_BUD.device), self.head_dim, self.theta, q.dtype
            )
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.kv_norm is not None:
            k = self.kv_norm(k)
            if not self.fam.kv_shared:
                v = self.kv_norm(v)
        if self.fam.kv_shared:
            v = k  # K = V: rotated and normalised together (code)
        y = double_attention(q, k, v, C, self.fam.segments()).transpose(1, 2).reshape(B, U, D)
        if self.compress is not None:
            # (B, h, D) -> (B, p, D): a learned map along the sequence, per channel
            slots = self.compress(y[:, :C].transpose(1, 2)).transpose(1, 2)
            y = torch.cat([slots, y[:, C:]], dim=1)
        return self.out(y)


def _double_reads(
    fam: _ContextLatentConfig, layer_idx: int, C: int, out_rows: torch.Tensor
) -> torch.Tensor:
    """Input rows (``C`` context + l latents) that layer ``layer_idx``'s ``out_rows`` read."""
    l, p = fam.n_latents, fam.compress_len(layer_idx)
    C_out = C if p is None else p
    ctx_out, lat = out_rows[:C_out], out_rows[C_out:]
    rows = torch.zeros(C + l, dtype=torch.bool)
    if p is None:
        rows |= out_rows
    elif getattr(fam, "aligned_residual", True):
        rows[C:] |= lat  # the latents keep their own residual; the slots have none
    else:
        rows[: p + l] |= out_rows  # the code's x[:, :p+l]
    if lat.any():
        rows[:C] = True
        rows[C:] |= prefix_reads(lat)
    if ctx_out.any():
        # a slot mixes every context row
        need = torch.ones(C, dtype=torch.bool) if p is not None else ctx_out
        seg = need.view(fam.segments(), -1).any(dim=1, keepdim=True)
        rows[:C] |= seg.expand(-1, C // fam.segments()).reshape(-1)
    return rows


class ContextLatentBlock(nn.Module):
    """Pre-norm block around :class:`DoubleAttention`, with V3's layer-0 residual choice."""

    def __init__(self, cfg: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        block: BlockConfig = cfg.layers[layer_idx]
        self.fam = cfg.family
        self.norm1 = make_norm(cfg)
        self.attn = DoubleAttention(cfg, layer_idx)
        self.norm2 = make_norm(cfg)
        self.mlp = MLP(cfg, block)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x_BUD: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.attn(self.norm1(x_BUD)))
        if self.attn.compress is None:
            x_BUD = x_BUD + y
        else:
            p, l = self.attn.compress.out_features, self.fam.n_latents  # type: ignore[attr-defined]
            if self.fam.aligned_residual:  # type: ignore[attr-defined]
                # slots: no residual (pooled rows, no position of their own); latents: their own
                x_BUD = torch.cat([y[:, :p], y[:, p:] + x_BUD[:, x_BUD.shape[1] - l :]], dim=1)
            else:
                x_BUD = y + x_BUD[:, : p + l]  # the code: embeddings of positions 0 .. p+l−1
        return x_BUD + self.drop(self.mlp(self.norm2(x_BUD)))


class _ContextLatentLM(LanguageModel):
    """Embedding -> context/latent blocks -> head on the latents."""

    complexity = ""
    decode_state_formula = "no cache: each new token re-runs the whole window (a full forward)"
    supports_decode = False
    scored = "last l (latents)"
    uses_layers = (
        "one softmax item per layer: n_heads, bias and mlp_ratio; the family owns the block"
    )
    residual_out_suffixes = ("attn.out", "mlp.fc2")

    @classmethod
    def flop_exponent(cls, cfg: ModelConfig) -> float:
        return 2.0  # the context attends itself (h², or h·s with s = h/n): quadratic in T

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self._build_embeddings(cfg)
        self.blocks = nn.ModuleList(ContextLatentBlock(cfg, i) for i in range(cfg.n_layers))
        self._build_head(cfg)
        self.reset_parameters()

    def hidden(self, x_BTD: torch.Tensor) -> torch.Tensor:
        self.cfg.family.check_seq_len(self.cfg, x_BTD.shape[1])
        for block in self.blocks:
            x_BTD = block(x_BTD)
        return x_BTD

    @classmethod
    def n_rows(cls, cfg: ModelConfig, seq_len: int) -> int:
        fam = cfg.family
        assert isinstance(fam, _ContextLatentConfig)
        C = seq_len - fam.n_latents
        for i in range(cfg.n_layers):
            C = fam.compress_len(i) or C
        return C + fam.n_latents

    @classmethod
    def reads(cls, cfg: ModelConfig, seq_len: int, rows_T: torch.Tensor) -> torch.Tensor:
        """Layer by layer from the top: a needed latent reads every context row and the latents
        up to the last needed one; a needed context row reads its whole segment; V3's slots
        read every context row of layer 0 (the sequence projection); residuals as the block
        adds them."""
        fam = cfg.family
        assert isinstance(fam, _ContextLatentConfig)
        l = fam.n_latents
        ctx_in = [seq_len - l]
        for i in range(cfg.n_layers - 1):
            ctx_in.append(fam.compress_len(i) or ctx_in[-1])
        for i in reversed(range(cfg.n_layers)):
            rows_T = _double_reads(fam, i, ctx_in[i], rows_T)
        return rows_T

    @classmethod
    def cost(cls, cfg: ModelConfig, seq_len: int) -> ModelCost:
        fam = cfg.family
        assert isinstance(fam, _ContextLatentConfig)
        D, l = cfg.d_model, fam.n_latents
        C = seq_len - l
        layers = []
        for i, block in enumerate(cfg.layers):
            U = C + l
            exact, dense = double_pairs(C, l, fam.segments())
            p = fam.compress_len(i)
            proj = 2 * U * D * D + (2 if fam.kv_shared else 4) * U * D * D
            if p is not None:
                proj += 2 * C * p * D  # Linear(h -> p) along the sequence, per channel
                C = p
            U_out = C + l
            proj += 2 * U_out * D * D  # Wo
            layers.append(
                LayerCost(
                    index=i,
                    kind=fam.kind,
                    seq_len=U_out,
                    mixer=MixerFlops(proj, 4 * D * exact, 4 * D * dense),
                    mlp=4 * U_out * D * cfg.mlp_hidden(block),
                    decode_state=0,
                    config=block.mixer,
                    mlp_ratio=block.mlp_ratio,
                )
            )
        return ModelCost(seq_len=seq_len, layers=tuple(layers), head=head_cost(cfg, l))

    @classmethod
    def _tiny(cls, family: FamilyConfig, T: int, **kw: Any) -> tuple[ModelConfig, int]:
        block = BlockConfig(mixer=mixer_config("softmax", n_heads=2))
        layers = (block, BlockConfig(mixer=mixer_config("softmax", n_heads=4), mlp_ratio=2.0))
        kw.setdefault("max_seq_len", 64)
        return ModelConfig(d_model=16, vocab_size=64, family=family, layers=layers, **kw), T

    @classmethod
    def _invalid(cls, family: str, max_seq_len: int = 32, mixer: str = "softmax") -> str:
        return (
            f"d_model: 16\nmax_seq_len: {max_seq_len}\nfamily: {family}\n"
            f"layers: [{{mixer: {{kind: {mixer}, n_heads: 2}}}}]\n"
        )


@register_family("v1_double")
class V1Double(_ContextLatentLM):
    Config = V1Config
    summary = (
        "Mahmood & Huang V1 'DoubleAttention' (arXiv 2412.06106): in every layer the context"
        " attends itself bidirectionally and the latents attend all context + causal latents"
    )
    complexity = "O((h² + l·T)·D) per layer"

    @classmethod
    def example_configs(cls) -> list[tuple[ModelConfig, int]]:
        return [
            cls._tiny(V1Config(n_latents=6), 20),
            cls._tiny(
                V1Config(n_latents=5, kv_shared=False, kv_norm=False, rope_all_layers=False),
                15,
                pos_encoding="learned",
            ),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[str, str]]:
        return [
            (cls._invalid("{kind: v1_double, n_latents: 0}"), "family.n_latents"),
            (cls._invalid("{kind: v1_double, n_latents: 32}"), "family.n_latents"),
            (cls._invalid("{kind: v1_double, n_latents: 8}", mixer="ecp"), "layers[0].mixer.kind"),
            (cls._invalid("{kind: v1_double, kv_shared: 1}"), "family.kv_shared"),
        ]


@register_family("v2_split")
class V2Split(_ContextLatentLM):
    Config = V2Config
    summary = (
        "Mahmood & Huang V2 'sSplitAttention': as V1, but the context attends only inside its"
        " own segment (n_ctx_segments of s = h/n); RoPE in layer 0"
    )
    complexity = "O((h·s + l·T)·D) per layer"

    @classmethod
    def example_configs(cls) -> list[tuple[ModelConfig, int]]:
        return [
            cls._tiny(V2Config(n_latents=6, n_ctx_segments=4), 22),
            cls._tiny(
                V2Config(n_latents=3, n_ctx_segments=3, rope_all_layers=True, kv_norm=False), 15
            ),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[str, str]]:
        return [
            (cls._invalid("{kind: v2_split, n_ctx_segments: 0}"), "family.n_ctx_segments"),
            (cls._invalid("{kind: v2_split, n_latents: 40}"), "family.n_latents"),
        ]


@register_family("v3_compress")
class V3Compress(_ContextLatentLM):
    Config = V3Config
    summary = (
        "Mahmood & Huang V3 'CompressedDoubleAttention': layer 0 as V1, then the context is"
        " compressed along the sequence to p slots (learned Linear(h -> p)); later layers run"
        " on p + l rows; residual of the latents aligned (the code's is misaligned)"
    )
    complexity = "O(h²·D + Λ·l·(p + l)·D)"

    @classmethod
    def example_configs(cls) -> list[tuple[ModelConfig, int]]:
        return [
            cls._tiny(V3Config(n_latents=6, compressed_len=5), 20, max_seq_len=20),
            cls._tiny(
                V3Config(n_latents=4, compressed_len=7, aligned_residual=False, kv_shared=False),
                18,
                max_seq_len=18,
            ),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[str, str]]:
        return [
            (cls._invalid("{kind: v3_compress, compressed_len: 0}"), "family.compressed_len"),
            # h = 32 − 8 = 24 slots at most
            (
                cls._invalid("{kind: v3_compress, n_latents: 8, compressed_len: 25}"),
                "family.compressed_len",
            ),
        ]
