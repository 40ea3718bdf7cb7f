"""The decoder-only LM: embeddings, pre-norm blocks (norm + mixer + MLP), head.

The block never branches on the mixer kind: heterogeneity is data (``ModelConfig.layers``).
Shape suffixes: B batch, T tokens, D width, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.mixers import build_mixer
from archsearch.model.config import BlockConfig, ModelConfig

_ACTIVATIONS = {
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
}


def mlp_hidden(cfg: ModelConfig, block: BlockConfig) -> int:
    return max(1, round(block.mlp_ratio * cfg.d_model))


def _norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.d_model)
    return nn.LayerNorm(cfg.d_model, bias=cfg.bias)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, block: BlockConfig) -> None:
        super().__init__()
        hidden = mlp_hidden(cfg, block)
        self.fc1 = nn.Linear(cfg.d_model, hidden, bias=cfg.bias)
        self.act = _ACTIVATIONS[cfg.activation]()
        self.fc2 = nn.Linear(hidden, cfg.d_model, bias=cfg.bias)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x_BTD)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        block = cfg.layers[layer_idx]
        self.norm1 = _norm(cfg)
        self.mixer = build_mixer(block.mixer, cfg.mixer_context(layer_idx))
        self.norm2 = _norm(cfg)
        self.mlp = MLP(cfg, block)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x_BTD = x_BTD + self.drop(self.mixer(self.norm1(x_BTD)))
        return x_BTD + self.drop(self.mlp(self.norm2(x_BTD)))

    def step(self, x_B1D: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        h, state = self.mixer.step(self.norm1(x_B1D), state)
        x_B1D = x_B1D + self.drop(h)
        return x_B1D + self.drop(self.mlp(self.norm2(x_B1D))), state


@dataclass
class DecodeState:
    """Token-by-token decoding state of a :class:`DecoderLM`: the position and each layer's
    mixer state."""

    pos: int = 0
    layers: list[Any] = field(default_factory=list)


class DecoderLM(nn.Module):
    """Token embedding (+ learned positions) → blocks → final norm → LM head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = (
            nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.pos_encoding == "learned" else None
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm_f = _norm(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.tok_emb.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 init: N(0, std) for linears and embeddings, residual outputs scaled by
        1/sqrt(2·n_layers). Parameters that are not Linear/Embedding weights keep the
        initialisation their mixer gave them."""
        std = self.cfg.init_std
        for name, mod in self.named_modules():
            # meta tensors have no values to initialise
            if isinstance(mod, (nn.Linear, nn.Embedding)) and mod.weight.device.type != "meta":
                is_residual_out = name.endswith("mixer.out") or name.endswith("mlp.fc2")
                scale = 1 / math.sqrt(2 * self.cfg.n_layers) if is_residual_out else 1.0
                nn.init.normal_(mod.weight, mean=0.0, std=std * scale)
                if getattr(mod, "bias", None) is not None:
                    nn.init.zeros_(mod.bias)

    def forward(self, idx_BT: torch.Tensor) -> torch.Tensor:
        B, T = idx_BT.shape
        x = self.tok_emb(idx_BT)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx_BT.device))
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm_f(x))

    def init_decode_state(self, batch: int, *, max_len: int | None = None) -> DecodeState:
        """State for decoding ``batch`` sequences of at most ``max_len`` tokens with :meth:`step`.

        Every layer's mixer must support incremental decoding (``supports_decode``)."""
        missing = [
            f"layers[{i}] ({blk.mixer.cfg.kind})"
            for i, blk in enumerate(self.blocks)
            if not blk.mixer.supports_decode
        ]
        if missing:
            raise NotImplementedError(
                "incremental decoding needs every mixer to support it; these do not: "
                + ", ".join(missing)
            )
        w = self.tok_emb.weight
        return DecodeState(
            pos=0,
            layers=[
                blk.mixer.init_state(batch, dtype=w.dtype, device=w.device, max_len=max_len)
                for blk in self.blocks
            ],
        )

    def step(self, idx_B1: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        """Logits for one more token per sequence; equal to ``forward`` at that position.

        Updates ``state`` in place (and returns it); run under ``torch.no_grad()``."""
        x = self.tok_emb(idx_B1)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.tensor([state.pos], device=idx_B1.device))
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x, state.layers[i] = block.step(x, state.layers[i])
        state.pos += 1
        return self.head(self.norm_f(x)), state

    def loss(self, idx_BT: torch.Tensor, targets_BT: torch.Tensor) -> torch.Tensor:
        logits = self.forward(idx_BT)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets_BT.flatten())


def build_model(cfg: ModelConfig, *, device: torch.device | str | None = None) -> DecoderLM:
    """Build the model for ``cfg`` (on ``device``; ``"meta"`` allocates nothing)."""
    if device is None:
        return DecoderLM(cfg)
    with torch.device(device):
        return DecoderLM(cfg)


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
