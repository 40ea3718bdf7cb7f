"""Analytic forward FLOPs and decode state of a whole model, layer by layer.

Convention (docs/costs.md, "FLOP conventions"): matmul work only, a multiply-add = 2 FLOPs; the
LM head ``2·T·D·V`` is included, embedding look-ups (and the addition of learned positions), norms,
softmax and activations are not. A training step is taken as 3× the *training* forward pass
(backward = 2× forward), the usual model-FLOPs convention.

Two forwards: the **inference** forward (eval mode: held-out evaluation, latency, what
``forward_*`` and the search's ``flops_fwd`` report) and the **training** forward (train mode:
what ``training_*`` is 3× of). They differ only for layers that train and infer differently
(S2-Attn's LongLoRA recipe, ``inference: full``); decode state is always the inference layer's.

Torch-free arithmetic over the configs and the mixers' own formulas: this module imports no model
code (the MLP width is ``ModelConfig.mlp_hidden``), so every family's model may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archsearch.mixers import MixerFlops, get_mixer
from archsearch.model.config import ModelConfig
from archsearch.model.families import get_family


@dataclass(frozen=True)
class LayerCost:
    """One layer: its token mixing (``mixer``), its MLP, and what it holds when decoding.

    ``seq_len`` is the number of rows the layer outputs (the tokens through its MLP); families
    change it between layers (PerceiverAR: M inputs -> N latents). ``config`` is the config whose
    fields describe the layer (a mixer config, or the family config for a family-owned layer);
    ``mlp_ratio`` its MLP width. ``mixer`` is the inference (eval-mode) forward; ``mixer_train``
    the training forward when it differs (None: the same).
    """

    index: int
    kind: str
    seq_len: int
    mixer: MixerFlops
    mlp: int
    decode_state: int
    config: Any = None
    mlp_ratio: float | None = None
    mixer_train: MixerFlops | None = None

    @property
    def exact(self) -> int:
        return self.mixer.exact + self.mlp

    @property
    def dense(self) -> int:
        return self.mixer.dense + self.mlp

    @property
    def train_mixer(self) -> MixerFlops:
        """The mixer's training (train-mode) forward."""
        return self.mixer if self.mixer_train is None else self.mixer_train


@dataclass(frozen=True)
class ModelCost:
    """``head`` is the LM head on the scored positions only (``2·S·D·V``)."""

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
        """What a matmul-level counter (FlopCounterMode) should report for the inference
        (eval-mode) forward pass."""
        return sum(lc.mixer.matmul_dense + lc.mlp for lc in self.layers) + self.head

    @property
    def training_forward_exact(self) -> int:
        """The forward a training step runs (train mode); = ``forward_exact`` unless a layer
        trains and infers differently."""
        return sum(lc.train_mixer.exact + lc.mlp for lc in self.layers) + self.head

    @property
    def training_forward_dense(self) -> int:
        return sum(lc.train_mixer.dense + lc.mlp for lc in self.layers) + self.head

    @property
    def training_counter_visible(self) -> int:
        """What a matmul-level counter should report for the train-mode forward pass."""
        return sum(lc.train_mixer.matmul_dense + lc.mlp for lc in self.layers) + self.head

    @property
    def training_exact(self) -> int:
        return 3 * self.training_forward_exact

    @property
    def training_dense(self) -> int:
        return 3 * self.training_forward_dense

    @property
    def decode_state(self) -> int:
        return sum(lc.decode_state for lc in self.layers)


def model_cost(cfg: ModelConfig, seq_len: int) -> ModelCost:
    """Per-layer analytic costs for one window of ``seq_len`` tokens (any family)."""
    cfg.check_seq_len(seq_len)
    return get_family(cfg.family.kind).cost(cfg, seq_len)


def block_costs(cfg: ModelConfig, seq_len: int, first_index: int = 0) -> list[LayerCost]:
    """The ``layers`` blocks (mixer + MLP) run over ``seq_len`` rows each."""
    D, T = cfg.d_model, seq_len
    layers = []
    for i, block in enumerate(cfg.layers):
        mixer_cls = get_mixer(block.mixer.kind)
        ctx = cfg.mixer_context(i)
        infer = mixer_cls.inference_flops(block.mixer, ctx, T)
        train = mixer_cls.flops(block.mixer, ctx, T)
        layers.append(
            LayerCost(
                index=first_index + i,
                kind=block.mixer.kind,
                seq_len=T,
                mixer=infer,
                mlp=4 * T * D * cfg.mlp_hidden(block),
                decode_state=mixer_cls.decode_state(block.mixer, ctx, T),
                config=block.mixer,
                mlp_ratio=block.mlp_ratio,
                mixer_train=None if train == infer else train,
            )
        )
    return layers


def head_cost(cfg: ModelConfig, n_scored: int) -> int:
    """The LM head on the scored rows: ``2·S·D·V``."""
    return 2 * n_scored * cfg.d_model * cfg.vocab_size


def decoder_cost(cfg: ModelConfig, seq_len: int) -> ModelCost:
    """The plain decoder: every block over all T tokens, head on all T."""
    T = seq_len
    return ModelCost(seq_len=T, layers=tuple(block_costs(cfg, T)), head=head_cost(cfg, T))
