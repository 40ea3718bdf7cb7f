"""The token-mixer contract every mixer follows.

A mixer maps ``x_BTD -> y_BTD`` (same shape and dtype), mixes only along T and only causally
(``y[:, t]`` depends on ``x[:, :t+1]`` alone), and owns its input/output projections, so the block
around it is just norm + residual + MLP.

Shape suffixes used across ``archsearch.mixers``: B batch, T tokens, D model width, H heads,
d head width, n number of blocks/groups, G group (block) length.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from archsearch.dataconf import to_dict
from archsearch.mixers._reach import prefix_reads


@dataclass(frozen=True, kw_only=True)
class MixerConfig:
    """Hyper-parameters of one token mixer; subclasses add fields and validate in __post_init__.

    ``kind`` is set by ``@register_mixer``. Field values must be scalars (searchable, YAML-able).
    """

    kind: ClassVar[str] = ""

    def check(self, ctx: MixerContext, seq_len: int | None = None) -> None:  # noqa: B027
        """Checks that need the model (width, RoPE, ...) or the sequence length.

        Raise :class:`archsearch.errors.ConfigError` naming the field, the value and what is
        allowed. ``seq_len`` is None when only the model is known.
        """

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **to_dict(self)}

    def replace(self, **changes: Any) -> MixerConfig:
        return dataclasses.replace(self, **changes)

    @property
    def label(self) -> str:
        """Short name of this layer in reports and fronts: the kind, unless a setting changes
        what the layer is at inference (``s2attn(infer=full)``)."""
        return self.kind


@dataclass(frozen=True)
class MixerContext:
    """What the model builder tells a mixer about where it sits."""

    d_model: int
    layer_idx: int = 0
    n_layers: int = 1
    max_seq_len: int = 1024
    rope: bool = False
    rope_theta: float = 10000.0
    kind_idx: int | None = None
    """index of this layer among the stack's layers of the same mixer kind (None: not known);
    lets a mixer whose behaviour depends on depth (HSM's shift schedule) skip other kinds"""
    kind_count: int | None = None
    """how many layers of the stack have this mixer kind (None: not known)"""


@dataclass(frozen=True)
class MixerFlops:
    """Forward FLOPs of one mixer layer for one sequence; a multiply-add counts as 2.

    ``projections``: the dense linear maps (Q, K, V, O, ...).
    ``core_exact``: attention core over unmasked query-key pairs only (4·D per pair).
    ``core_dense``: attention core as this implementation computes it: whole (masked) score blocks.
    ``elementwise``: mixing arithmetic that is not a matmul (HSM-style mixers); softmax, masking,
    norms and RoPE are never counted (docs/costs.md, "FLOP conventions").
    """

    projections: int
    core_exact: int
    core_dense: int
    elementwise: int = 0

    @property
    def exact(self) -> int:
        return self.projections + self.core_exact + self.elementwise

    @property
    def dense(self) -> int:
        return self.projections + self.core_dense + self.elementwise

    @property
    def matmul_dense(self) -> int:
        """The part a matmul-level counter (FlopCounterMode) sees: no elementwise terms."""
        return self.projections + self.core_dense

    def __add__(self, other: MixerFlops) -> MixerFlops:
        return MixerFlops(
            self.projections + other.projections,
            self.core_exact + other.core_exact,
            self.core_dense + other.core_dense,
            self.elementwise + other.elementwise,
        )


class TokenMixer(nn.Module, abc.ABC):
    """Base class: ``forward(x_BTD) -> y_BTD``, strictly causal."""

    Config: ClassVar[type[MixerConfig]]
    #: one-line description with the paper reference, shown by ``archsearch mixers``
    summary: ClassVar[str] = ""
    #: training-time cost of the mixing terms, e.g. "O(T²·D)"
    complexity: ClassVar[str] = ""
    #: numbers held per layer when decoding token by token, as a formula
    decode_state_formula: ClassVar[str] = ""
    #: whether token-by-token decoding that reproduces forward() is implemented for every config
    #: (``init_state`` and ``step``); a mixer where it depends on the config overrides
    #: :meth:`supports_decode_for`, which is what callers (and the conformance suite) ask
    supports_decode: ClassVar[bool] = False

    def __init__(self, cfg: MixerConfig, ctx: MixerContext) -> None:
        super().__init__()
        cfg.check(ctx)
        self.cfg = cfg
        self.ctx = ctx

    @abc.abstractmethod
    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor: ...

    # ---- incremental decoding (configs for which ``supports_decode_for`` is true) ----

    @classmethod
    def supports_decode_for(cls, cfg: MixerConfig) -> bool:
        """Whether a layer with this config decodes token by token (``init_state`` and
        ``step`` reproduce ``forward``). Defaults to the class's ``supports_decode``."""
        return cls.supports_decode

    def init_state(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
        max_len: int | None = None,
    ) -> Any:
        """The decoding state before the first token, for ``batch`` sequences.

        ``max_len`` bounds the tokens that will be decoded (None: no bound), so a state can be
        sized to it. Contract (checked by the conformance suite): after ``n`` tokens decoded from
        a state made with ``max_len=n``, the state's tensors hold exactly
        ``batch · decode_state(cfg, ctx, n)`` numbers.
        """
        raise NotImplementedError(f"{type(self).__name__} has no incremental decoding")

    def step(self, x_B1D: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Consume one token per sequence; ``y_B1D`` equals ``forward`` at that position.

        The state may be updated in place (and is returned); decode under ``torch.no_grad()``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no incremental decoding")

    @classmethod
    @abc.abstractmethod
    def flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        """Analytic FLOPs of the forward a training step runs (train mode), for one sequence of
        ``seq_len`` tokens."""

    @classmethod
    def inference_flops(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> MixerFlops:
        """Analytic FLOPs of the forward in eval mode (evaluation, inference). The same as
        :meth:`flops` unless the layer trains and infers differently (S2-Attn's LongLoRA
        recipe, ``inference: full``)."""
        return cls.flops(cfg, ctx, seq_len)

    @classmethod
    @abc.abstractmethod
    def decode_state(cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> int:
        """Numbers held by this layer when generating token ``seq_len`` (per sequence), by the
        inference-mode layer (the one :meth:`step` runs)."""

    @classmethod
    def flop_exponent(cls, cfg: MixerConfig) -> float:
        """The theory's exponent ``e`` in (inference) forward FLOPs ∝ T^e as T grows at fixed
        settings (:meth:`inference_flops`, what ``flops_fwd`` reports).

        The reference slope of ``archsearch scale`` plots; the fitted slope of the counted FLOPs
        is checked against it. Linear (1.0) unless a mixer says otherwise; T·log T counts as 1.
        """
        return 1.0

    @classmethod
    def stack_flop_exponent(cls, cfg: MixerConfig, ctx: MixerContext) -> float:
        """:meth:`flop_exponent` of this layer in the stack ``ctx`` describes, as ``archsearch
        scale`` grows ``max_seq_len`` with T (HSM's full-coverage schedule reads more copies per
        layer the fewer HSM layers there are). Defaults to :meth:`flop_exponent`."""
        return cls.flop_exponent(cfg)

    @classmethod
    def reads(
        cls, cfg: MixerConfig, ctx: MixerContext, seq_len: int, rows_T: torch.Tensor
    ) -> torch.Tensor:
        """Receptive field of one layer: the input positions (bool ``(T,)``) that the outputs at
        ``rows_T`` (bool ``(T,)``) depend on, their gradient support; O(T) or O(T log T), never
        a T×T matrix (docs/architectures.md, "Hybrid stacks"). The default is full causal attention:
        every position up to the last row. A mixer that reads less overrides it."""
        return prefix_reads(rows_T)

    @classmethod
    def layer_info(cls, cfg: MixerConfig, ctx: MixerContext) -> dict[str, Any]:
        """Settings derived from the layer's place in the stack (e.g. HSM's shift), for reports.

        Plain data (JSON-able); empty for mixers that behave the same at every depth."""
        return {}

    # ---- hooks for the conformance suite (archsearch.testing.mixers) ----

    @classmethod
    def example_configs(cls, d_model: int) -> list[MixerConfig]:
        """Configs the conformance suite runs; small blocks so blocked code paths are exercised."""
        return [cls.Config()]

    @classmethod
    def equivalences(cls, d_model: int, seq_len: int) -> list[tuple[MixerConfig, str, MixerConfig]]:
        """Exact limit cases ``(this_cfg, other_kind, other_cfg)``.

        With the same weights both mixers give the same output at ``seq_len`` (for example, a
        window that covers the whole sequence equals softmax)."""
        return []

    @classmethod
    def invalid_configs(cls) -> list[tuple[dict[str, Any], str]]:
        """``(fields, bad_field)`` pairs whose construction must fail naming ``bad_field``."""
        return []
