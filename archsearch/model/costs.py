"""Analytic forward FLOPs and decode state of a whole model, layer by layer.

Convention (README "FLOP convention"): matmul work only, a multiply-add = 2 FLOPs; the LM head
``2·T·D·V`` is included, embedding look-ups, norms, softmax and activations are not. A training step
is taken as 3× the forward pass (backward = 2× forward), the usual model-FLOPs convention.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsearch.mixers import MixerFlops, get_mixer
from archsearch.model.config import ModelConfig
from archsearch.model.transformer import mlp_hidden


@dataclass(frozen=True)
class LayerCost:
    index: int
    kind: str
    seq_len: int
    mixer: MixerFlops
    mlp: int
    decode_state: int

    @property
    def exact(self) -> int:
        return self.mixer.exact + self.mlp

    @property
    def dense(self) -> int:
        return self.mixer.dense + self.mlp


@dataclass(frozen=True)
class ModelCost:
    seq_len: int
    layers: tuple[LayerCost, ...]
    head: int

    @property
    def forward_exact(self) -> int:
        return sum(lc.exact for lc in self.layers) + self.head

    @property
    def forward_dense(self) -> int:
        return sum(lc.dense for lc in self.layers) + self.head

    @property
    def counter_visible(self) -> int:
        """What a matmul-level counter (FlopCounterMode) should report for the forward pass."""
        return sum(lc.mixer.matmul_dense + lc.mlp for lc in self.layers) + self.head

    @property
    def training_exact(self) -> int:
        return 3 * self.forward_exact

    @property
    def training_dense(self) -> int:
        return 3 * self.forward_dense

    @property
    def decode_state(self) -> int:
        return sum(lc.decode_state for lc in self.layers)


def model_cost(cfg: ModelConfig, seq_len: int) -> ModelCost:
    """Per-layer analytic costs for one sequence of ``seq_len`` tokens."""
    cfg.check_seq_len(seq_len)
    D, T = cfg.d_model, seq_len
    layers = []
    for i, block in enumerate(cfg.layers):
        mixer_cls = get_mixer(block.mixer.kind)
        ctx = cfg.mixer_context(i)
        layers.append(
            LayerCost(
                index=i,
                kind=block.mixer.kind,
                seq_len=T,
                mixer=mixer_cls.flops(block.mixer, ctx, T),
                mlp=4 * T * D * mlp_hidden(cfg, block),
                decode_state=mixer_cls.decode_state(block.mixer, ctx, T),
            )
        )
    return ModelCost(seq_len=T, layers=tuple(layers), head=2 * T * D * cfg.vocab_size)
