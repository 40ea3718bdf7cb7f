"""The decoder-only LM: embeddings, pre-norm blocks (norm + mixer + MLP), head; and the
:class:`LanguageModel` interface every structural family implements.

The block never branches on the mixer kind: heterogeneity is data (``ModelConfig.layers``).
Shape suffixes: B batch, T tokens, D width, V vocabulary, S scored positions (the last S of the
window), U rows the stack keeps (context/latents; the last S are scored).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from archsearch.mixers import build_mixer, get_mixer, mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.costs import ModelCost, decoder_cost
from archsearch.model.families import DecoderConfig, FamilyConfig, get_family, register_family

_ACTIVATIONS = {
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
}


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.d_model)
    return nn.LayerNorm(cfg.d_model, bias=cfg.bias)


class MLP(nn.Module):
    """``fc2(act(fc1(x)))``; the hidden width comes from ``block.mlp_ratio`` or ``hidden``."""

    def __init__(
        self, cfg: ModelConfig, block: BlockConfig | None = None, *, hidden: int | None = None
    ) -> None:
        super().__init__()
        if hidden is None:
            assert block is not None, "MLP needs a block or a hidden width"
            hidden = cfg.mlp_hidden(block)
        self.fc1 = nn.Linear(cfg.d_model, hidden, bias=cfg.bias)
        self.act = _ACTIVATIONS[cfg.activation]()
        self.fc2 = nn.Linear(hidden, cfg.d_model, bias=cfg.bias)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x_BTD)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        block = cfg.layers[layer_idx]
        self.norm1 = make_norm(cfg)
        self.mixer = build_mixer(block.mixer, cfg.mixer_context(layer_idx))
        self.norm2 = make_norm(cfg)
        self.mlp = MLP(cfg, block)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x_BTD = x_BTD + self.drop(self.mixer(self.norm1(x_BTD)))
        return x_BTD + self.drop(self.mlp(self.norm2(x_BTD)))

    # incremental decoding, for mixers with ``init_state``/``step`` (``supports_decode``)

    def init_state(
        self,
        batch: int,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> Any:
        return self.mixer.init_state(  # type: ignore[call-arg]
            batch, dtype=dtype, device=device, max_len=max_len
        )

    def step(self, x_B1D: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One token through the block; equals ``forward`` on the prefix at that position."""
        y, state = self.mixer.step(self.norm1(x_B1D), state)  # type: ignore[operator]
        x_B1D = x_B1D + self.drop(y)
        return x_B1D + self.drop(self.mlp(self.norm2(x_B1D))), state


def stack_reads(cfg: ModelConfig, n_rows: int, rows_T: torch.Tensor) -> torch.Tensor:
    """The input rows (bool) of the ``layers`` stack, run over ``n_rows`` rows, that its output
    rows ``rows_T`` depend on: each layer's mixer ``reads`` from the top down (blocks add their
    input row; MLPs and norms are per row)."""
    for i in reversed(range(cfg.n_layers)):
        mixer = cfg.layers[i].mixer
        rows_T = rows_T | get_mixer(mixer.kind).reads(mixer, cfg.mixer_context(i), n_rows, rows_T)
    return rows_T


def receptive_field(cfg: ModelConfig, seq_len: int) -> int:
    """How many of the ``seq_len`` window positions the last position's output depends on (its
    gradient support), from the structure alone: ``seq_len`` when the model sees its whole
    window (docs/architectures.md, "Hybrid stacks")."""
    return get_family(cfg.family.kind).receptive_field(cfg, seq_len)


def mixers_decode(cfg: ModelConfig) -> bool:
    """Whether every block's mixer implements token-by-token decoding."""
    return all(get_mixer(b.mixer.kind).supports_decode_for(b.mixer) for b in cfg.layers)


class LanguageModel(nn.Module, abc.ABC):
    """What every family's model provides; training and search use only this.

    ``forward(idx_BT)`` returns logits ``(B, S, V)`` for the **last** ``S = n_scored(T)``
    positions of the window: row ``s`` sits at position ``T − S + s`` and predicts the token
    after it. ``loss`` scores only those positions. ``embed`` + ``hidden`` split ``forward`` so
    tests can differentiate with respect to the input embeddings; ``hidden`` returns every row
    the stack keeps (``U`` rows: context or compressed slots first, then the S scored rows).
    """

    Config: ClassVar[type[FamilyConfig]]
    #: one line with the paper reference, shown by ``archsearch families``
    summary: ClassVar[str] = ""
    #: training cost of the mixing terms, e.g. "O(M·N·D + Λ·N²·D)"
    complexity: ClassVar[str] = ""
    #: what a generator holds between tokens, as a formula
    decode_state_formula: ClassVar[str] = ""
    #: whether token-by-token decoding (``init_state``/``step``) can exist for this family
    supports_decode: ClassVar[bool] = False
    #: which positions carry logits and loss, in words
    scored: ClassVar[str] = ""
    #: what the ``layers`` list means for this family
    uses_layers: ClassVar[str] = ""
    #: module-name suffixes of residual output projections (GPT-2 scaled init)
    residual_out_suffixes: ClassVar[tuple[str, ...]] = ("mixer.out", "mlp.fc2")

    cfg: ModelConfig

    def _build_embeddings(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = (
            nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.pos_encoding == "learned" else None
        )
        self.drop = nn.Dropout(cfg.dropout)

    def _build_head(self, cfg: ModelConfig) -> None:
        self.norm_f = make_norm(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.tok_emb.weight

    @property
    def n_residual_layers(self) -> int:
        """Residual layers, for the 1/sqrt(2·n) scale of residual output projections."""
        return self.cfg.n_layers

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 init: N(0, std) for linears and embeddings, residual outputs scaled by
        1/sqrt(2·n_layers). Parameters that are not Linear/Embedding weights keep the
        initialisation their module gave them."""
        std = self.cfg.init_std
        for name, mod in self.named_modules():
            # meta tensors have no values to initialise
            if isinstance(mod, (nn.Linear, nn.Embedding)) and mod.weight.device.type != "meta":
                is_residual_out = name.endswith(self.residual_out_suffixes)
                scale = 1 / math.sqrt(2 * self.n_residual_layers) if is_residual_out else 1.0
                nn.init.normal_(mod.weight, mean=0.0, std=std * scale)
                if getattr(mod, "bias", None) is not None:
                    nn.init.zeros_(mod.bias)

    def embed(self, idx_BT: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token (+ learned position) embeddings of positions ``start .. start+T-1``."""
        T = idx_BT.shape[1]
        x = self.tok_emb(idx_BT)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, start + T, device=idx_BT.device))
        return self.drop(x)

    @abc.abstractmethod
    def hidden(self, x_BTD: torch.Tensor) -> torch.Tensor:
        """Embeddings of the window -> final hidden rows ``(B, U, D)``; the last S are scored."""

    def n_scored(self, seq_len: int) -> int:
        return self.cfg.n_scored(seq_len)

    def scored_positions(self, seq_len: int) -> range:
        """Window positions whose next token is predicted (row s of the logits = item s)."""
        return range(seq_len - self.n_scored(seq_len), seq_len)

    def logits(self, h_BUD: torch.Tensor, n_scored: int) -> torch.Tensor:
        return self.head(self.norm_f(h_BUD[:, h_BUD.shape[1] - n_scored :]))

    def forward(self, idx_BT: torch.Tensor) -> torch.Tensor:
        return self.logits(self.hidden(self.embed(idx_BT)), self.n_scored(idx_BT.shape[1]))

    def loss(self, idx_BT: torch.Tensor, targets_BT: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the scored positions only.

        ``targets_BT`` is either the whole window's targets ``(B, T)`` (``idx`` shifted by one;
        only the last S are used) or just the scored ones ``(B, S)``.
        """
        logits = self.forward(idx_BT)
        T, S = idx_BT.shape[1], logits.shape[1]
        if targets_BT.shape[1] == T:
            targets_BT = targets_BT[:, T - S :]
        elif targets_BT.shape[1] != S:
            raise ValueError(f"targets have length {targets_BT.shape[1]}; expected {T} or {S}")
        return F.cross_entropy(logits.flatten(0, 1).float(), targets_BT.flatten())

    # ---- incremental decoding (families with supports_decode) ----

    def can_decode(self) -> bool:
        """Whether ``init_state``/``step`` work for this model (family and mixers)."""
        return self.supports_decode

    def decode_limit(self) -> int | None:
        """How many tokens ``step`` can take from an empty state (None: no limit)."""
        return None

    def init_state(self, batch: int, dtype: torch.dtype, device: torch.device | str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no incremental decoding")

    def step(self, idx_B1: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, 1, V)`` of the next token, as ``forward`` gives on the whole prefix."""
        raise NotImplementedError(f"{type(self).__name__} has no incremental decoding")

    # ---- costs and conformance hooks ----

    @classmethod
    def flop_exponent(cls, cfg: ModelConfig) -> float:
        """The theory's exponent ``e`` in forward FLOPs ∝ T^e as the window T grows at fixed
        settings (the reference slope of ``archsearch scale``): here the steepest layer's."""
        return max(
            get_mixer(b.mixer.kind).stack_flop_exponent(b.mixer, cfg.mixer_context(i))
            for i, b in enumerate(cfg.layers)
        )

    @classmethod
    def reads(cls, cfg: ModelConfig, seq_len: int, rows_T: torch.Tensor) -> torch.Tensor:
        """The window positions (bool ``(seq_len,)``) that the hidden rows ``rows_T`` (bool, one
        per row :meth:`hidden` returns) depend on. Default: the decoder, one row per position."""
        return stack_reads(cfg, seq_len, rows_T)

    @classmethod
    def receptive_field(cls, cfg: ModelConfig, seq_len: int) -> int:
        """Positions of a ``seq_len`` window that the last row depends on (module function
        :func:`receptive_field`)."""
        rows = torch.zeros(cls.n_rows(cfg, seq_len), dtype=torch.bool)
        rows[-1] = True
        return int(cls.reads(cfg, seq_len, rows).sum())

    @classmethod
    def n_rows(cls, cfg: ModelConfig, seq_len: int) -> int:
        """How many rows :meth:`hidden` returns for a window of ``seq_len``."""
        return seq_len

    @classmethod
    @abc.abstractmethod
    def cost(cls, cfg: ModelConfig, seq_len: int) -> ModelCost:
        """Per-layer analytic FLOPs and decode state for one window of ``seq_len`` tokens."""

    @classmethod
    def example_configs(cls) -> list[tuple[ModelConfig, int]]:
        """Tiny ``(model config, window length)`` pairs the family conformance suite runs."""
        return []

    @classmethod
    def invalid_configs(cls) -> list[tuple[str, str]]:
        """``(model YAML, bad field path)`` pairs whose loading must fail naming the field."""
        return []


@register_family("decoder")
class DecoderLM(LanguageModel):
    """Token embedding (+ learned positions) → blocks → final norm → LM head."""

    Config = DecoderConfig
    summary = "decoder-only stack: every block over all T positions (the layers' mixers)"
    complexity = "sum of the layers' mixers at T"
    decode_state_formula = "sum of the layers' mixer decode states"
    supports_decode = True
    scored = "all T"
    uses_layers = "every block, over all T positions"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self._build_embeddings(cfg)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self._build_head(cfg)
        self.reset_parameters()

    def hidden(self, x_BTD: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x_BTD = block(x_BTD)
        return x_BTD

    def can_decode(self) -> bool:
        return mixers_decode(self.cfg)

    def init_state(
        self,
        batch: int,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> Any:
        return {
            "pos": 0,
            "blocks": [b.init_state(batch, dtype, device, max_len) for b in self.blocks],
        }

    def init_decode_state(self, batch: int, *, max_len: int | None = None) -> Any:
        """State for decoding ``batch`` sequences of at most ``max_len`` tokens with :meth:`step`,
        in the model's own dtype and device. Every layer's mixer must decode."""
        missing = [
            f"layers[{i}] ({blk.mixer.cfg.kind})"
            for i, blk in enumerate(self.blocks)
            if not blk.mixer.supports_decode_for(blk.mixer.cfg)
        ]
        if missing:
            raise NotImplementedError(
                "incremental decoding needs every mixer to support it; these do not: "
                + ", ".join(missing)
            )
        w = self.tok_emb.weight
        return self.init_state(batch, w.dtype, w.device, max_len)

    def step(self, idx_B1: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        x = self.embed(idx_B1, start=state["pos"])
        states = []
        for block, s in zip(self.blocks, state["blocks"], strict=True):
            x, s = block.step(x, s)
            states.append(s)
        return self.logits(x, 1), {"pos": state["pos"] + 1, "blocks": states}

    @classmethod
    def cost(cls, cfg: ModelConfig, seq_len: int) -> ModelCost:
        return decoder_cost(cfg, seq_len)

    @classmethod
    def example_configs(cls) -> list[tuple[ModelConfig, int]]:
        def cfg(mixer: Any, **kw: Any) -> ModelConfig:
            layers = (BlockConfig(mixer=mixer), BlockConfig(mixer=mixer, mlp_ratio=2.0))
            return ModelConfig(d_model=16, vocab_size=64, max_seq_len=64, layers=layers, **kw)

        return [
            (cfg(mixer_config("softmax", n_heads=2)), 19),
            # ECP: loss on every position (all T scored), decodes block-aligned
            (cfg(mixer_config("ecp", n_heads=2, segment_len=5), pos_encoding="learned"), 20),
        ]

    @classmethod
    def invalid_configs(cls) -> list[tuple[str, str]]:
        return [("family: decodr\nd_model: 16\nlayers: [{mixer: {kind: softmax}}]\n", "family")]


#: in-place random initialisers (``torch.nn.init`` functions and tensor methods): no-ops on meta
_RANDOM_INIT = frozenset(
    {
        "normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
        "xavier_uniform_", "xavier_normal_", "orthogonal_", "sparse_", "log_normal_",
        "exponential_", "cauchy_", "geometric_", "random_", "bernoulli_",
    }
)  # fmt: skip


class _SkipInitOnMeta(TorchFunctionMode):
    """Returns a meta tensor unchanged from a random initialiser (it has no values to set).

    Besides being pointless, ``normal_`` on a meta tensor imports ``torch._dynamo`` (about 2 s)
    for its meta kernel. Tensors on other devices are initialised as ever, and a meta tensor
    draws nothing from the random generator either way, so seeded builds are unchanged.
    """

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in _RANDOM_INIT:
            t = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
            if isinstance(t, torch.Tensor) and t.is_meta:
                return t
        return func(*args, **kwargs)


@contextmanager
def skip_init_on_meta() -> Iterator[None]:
    """Inside: ``torch.nn.init``'s random initialisers (and ``Tensor.normal_``, ...) leave meta
    tensors as they are; see :class:`_SkipInitOnMeta`."""
    with _SkipInitOnMeta():
        yield


def build_model(cfg: ModelConfig, *, device: torch.device | str | None = None) -> LanguageModel:
    """Build the model of ``cfg``'s family (on ``device``; ``"meta"`` allocates nothing and
    initialises nothing: :func:`skip_init_on_meta`)."""
    cls = get_family(cfg.family.kind)
    if device is None:
        return cls(cfg)
    on_meta = torch.device(device).type == "meta"
    with torch.device(device), skip_init_on_meta() if on_meta else nullcontext():
        return cls(cfg)


def count_params(cfg: ModelConfig) -> dict[str, int]:
    """Exact parameter counts, from the real modules built on the meta device.

    ``non_embedding`` excludes the token and position tables (an untied head is counted).
    """
    model = build_model(cfg, device="meta")
    total = sum(p.numel() for p in model.parameters())  # tied weights are counted once
    emb = model.tok_emb.weight.numel()
    if model.pos_emb is not None:
        emb += model.pos_emb.weight.numel()
    return {"total": total, "embedding": emb, "non_embedding": total - emb}
