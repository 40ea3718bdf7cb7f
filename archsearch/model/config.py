"""Model configuration: a per-layer list of blocks, so heterogeneous stacks are plain data.

YAML form (``layers`` items may carry ``repeat: n`` as shorthand for n identical blocks)::

    name: gpt2-small
    d_model: 768
    vocab_size: 50257
    max_seq_len: 1024
    pos_encoding: learned
    layers:
      - {repeat: 12, mlp_ratio: 4.0, mixer: {kind: softmax, n_heads: 12, bias: true}}

This module is the one place that turns dicts into configs and back; every error names the file,
line, field path, value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from archsearch.dataconf import (
    MAX_D_MODEL,
    MAX_LAYERS,
    MAX_MLP_RATIO,
    MAX_SEQ_LEN,
    MAX_VOCAB,
    check_int,
    check_number,
    coerce,
    kinded_from_dict,
)
from archsearch.errors import ConfigError, require
from archsearch.mixers import MixerConfig, MixerContext, get_mixer, list_mixers
from archsearch.model.families import (
    DecoderConfig,
    FamilyConfig,
    family_config_from_data,
)
from archsearch.model.overrides import apply_sets, parse_set
from archsearch.yamlio import LineMap, line_of, load_yaml, parse_yaml


@dataclass(frozen=True, kw_only=True)
class BlockConfig:
    """One pre-norm block: ``x + mixer(norm(x))`` then ``x + mlp(norm(x))``."""

    mixer: MixerConfig
    mlp_ratio: float = 4.0
    """MLP hidden width as a multiple of d_model (hidden = round(mlp_ratio · d_model))"""

    def __post_init__(self) -> None:
        check_number("mlp_ratio", self.mlp_ratio, 0, MAX_MLP_RATIO, open_low=True)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """A decoder-only language model.

    ``family`` says how the stack is wired (``archsearch.model.families``): ``decoder`` (default),
    ``perceiver_ar``, ``v1_double``, ``v2_split``, ``v3_compress``. A family name (string) is
    accepted and becomes that family's config with default fields.
    """

    name: str = ""
    family: FamilyConfig = dataclasses.field(default_factory=DecoderConfig)
    d_model: int
    vocab_size: int = 256
    """256 = byte-level"""
    max_seq_len: int = 1024
    """longest sequence; sizes the learned position table"""
    pos_encoding: Literal["rope", "learned", "none"] = "rope"
    rope_theta: float = 10000.0
    tie_embeddings: bool = True
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    activation: Literal["gelu", "gelu_tanh", "relu", "silu"] = "gelu"
    bias: bool = False
    """bias in the MLP linears and LayerNorms (GPT-2: true)"""
    dropout: float = 0.0
    init_std: float = 0.02
    layers: tuple[BlockConfig, ...]

    def __post_init__(self) -> None:
        # sizes first, against the documented bounds (docs/search.md, "Spaces")
        check_int("d_model", self.d_model, 1, MAX_D_MODEL)
        require(len(self.layers) >= 1, "layers", list(self.layers), "a non-empty list of blocks")
        require(
            len(self.layers) <= MAX_LAYERS,
            "layers",
            len(self.layers),
            f"at most {MAX_LAYERS} blocks (after repeat)",
        )
        check_int("vocab_size", self.vocab_size, 1, MAX_VOCAB)
        check_int("max_seq_len", self.max_seq_len, 1, MAX_SEQ_LEN)
        check_number("rope_theta", self.rope_theta, 0, 1e12, open_low=True)
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a number in [0, 1)")
        check_number("init_std", self.init_std, 0, 1e3, open_low=True)
        if not isinstance(self.family, FamilyConfig):
            object.__setattr__(self, "family", family_config_from_data(self.family))
        for i, block in enumerate(self.layers):
            try:
                block.mixer.check(self.mixer_context(i))
            except ConfigError as e:
                raise e.located(prefix=f"layers[{i}].mixer") from None
        self.family.check(self)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def mlp_hidden(self, block: BlockConfig | float) -> int:
        """Hidden width of an MLP with ``mlp_ratio`` (a block's, or a number)."""
        ratio = block if isinstance(block, (int, float)) else block.mlp_ratio
        return max(1, round(ratio * self.d_model))

    def n_scored(self, seq_len: int) -> int:
        """How many positions (the last ones) of a ``seq_len`` window get logits and loss."""
        return self.family.n_scored(seq_len)

    def mixer_context(self, layer_idx: int) -> MixerContext:
        kind = self.layers[layer_idx].mixer.kind
        return MixerContext(
            d_model=self.d_model,
            layer_idx=layer_idx,
            n_layers=self.n_layers,
            max_seq_len=self.max_seq_len,
            rope=self.pos_encoding == "rope",
            rope_theta=self.rope_theta,
            kind_idx=sum(b.mixer.kind == kind for b in self.layers[:layer_idx]),
            kind_count=sum(b.mixer.kind == kind for b in self.layers),
        )

    def check_seq_len(self, seq_len: int) -> None:
        """Raise ConfigError unless every layer can run on ``seq_len`` tokens."""
        check_int("seq_len", seq_len, 1, MAX_SEQ_LEN)
        if self.pos_encoding == "learned" and seq_len > self.max_seq_len:
            raise ConfigError(
                "seq_len",
                seq_len,
                f"at most max_seq_len={self.max_seq_len} with learned positions",
            )
        self.family.check_seq_len(self, seq_len)
        stack_len = self.family.stack_seq_len(seq_len)
        for i, block in enumerate(self.layers):
            try:
                block.mixer.check(self.mixer_context(i), stack_len)
            except ConfigError as e:
                raise e.located(prefix=f"layers[{i}].mixer") from None

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# dict <-> config

_MODEL_FIELDS = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "layers"]


def _path_tuple(field: str) -> tuple[Any, ...]:
    out: list[Any] = []
    for name, idx in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        out.append(int(idx) if idx else name)
    return tuple(out)


def mixer_config_from_dict(data: Any, *, prefix: str) -> MixerConfig:
    cfg: MixerConfig = kinded_from_dict(
        data,
        prefix=prefix,
        lookup=get_mixer,
        names=list_mixers,
        what="mixer",
        shape="a mapping with 'kind' and the mixer's fields",
    )
    return cfg


def _block_items(data: Any) -> list[tuple[int, BlockConfig]]:
    if not isinstance(data, list) or not data:
        raise ConfigError(
            "layers", data, "a non-empty list of blocks {mixer: {...}, mlp_ratio: ...}"
        )
    out: list[tuple[int, BlockConfig]] = []
    if len(data) > MAX_LAYERS:
        raise ConfigError("layers", f"{len(data)} items", f"at most {MAX_LAYERS} blocks")
    for k, item in enumerate(data):
        prefix = f"layers[{k}]"
        if not isinstance(item, dict):
            raise ConfigError(prefix, item, "a mapping {mixer: {...}, mlp_ratio: ..., repeat: n}")
        item = dict(item)
        repeat = item.pop("repeat", 1)
        check_int(f"{prefix}.repeat", repeat, 1, MAX_LAYERS)
        if len(out) + repeat > MAX_LAYERS:
            raise ConfigError(
                f"{prefix}.repeat", repeat, f"at most {MAX_LAYERS} blocks in all (after repeat)"
            )
        if "mixer" not in item:
            raise ConfigError(f"{prefix}.mixer", allowed="a mapping with 'kind' (required)")
        mixer = mixer_config_from_dict(item.pop("mixer"), prefix=f"{prefix}.mixer")
        block = _block(item, mixer, prefix)
        out.extend((k, block) for _ in range(repeat))
    return out


def _block(item: dict[str, Any], mixer: MixerConfig, prefix: str) -> BlockConfig:
    allowed = {"mlp_ratio"}
    for key in item:
        if key not in allowed:
            raise ConfigError(
                f"{prefix}.{key}", item[key], "one of the fields mixer, mlp_ratio, repeat"
            )
    ratio = check_number(
        f"{prefix}.mlp_ratio", item.get("mlp_ratio", 4.0), 0, MAX_MLP_RATIO, open_low=True
    )
    try:
        return BlockConfig(mixer=mixer, mlp_ratio=float(ratio))
    except ConfigError as e:
        raise e.located(prefix=prefix) from None


class Locator:
    """Maps a ConfigError about a loaded config back to its file and line.

    Layer indices in errors refer to the expanded stack; the locator rewrites them to the YAML
    item that produced the layer (``repeat`` makes one item many layers).
    """

    def __init__(self, source: str | None, lines: LineMap, item_of_layer: list[int]) -> None:
        self.source = source
        self.lines = lines
        self.item_of_layer = item_of_layer

    def __call__(self, e: ConfigError) -> ConfigError:
        m = re.match(r"layers\[(\d+)\](.*)", e.field)
        if m and int(m.group(1)) < len(self.item_of_layer):
            k = self.item_of_layer[int(m.group(1))]
            e = ConfigError(f"layers[{k}]{m.group(2)}", e.value, e.allowed, got=e.got)
        if self.source is None:
            return e
        return e.located(source=self.source, line=line_of(self.lines, _path_tuple(e.field)))


def _from_dict(data: Any, locate: Locator) -> ModelConfig:
    if not isinstance(data, dict):
        raise ConfigError("model", data, "a mapping with d_model and layers")
    # field names and types first, so errors name the YAML key; then cross-field checks
    hints = typing.get_type_hints(ModelConfig)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "layers":
            continue
        if key not in _MODEL_FIELDS:
            raise ConfigError(key, value, "one of the fields layers, " + ", ".join(_MODEL_FIELDS))
        if key == "family":
            kwargs[key] = family_config_from_data(value, prefix="family")
        else:
            kwargs[key] = coerce(hints[key], value, key)
    if "d_model" not in kwargs:
        raise ConfigError("d_model", allowed="an integer >= 1 (required)")
    if "layers" not in data:
        raise ConfigError("layers", allowed="a non-empty list of blocks (required)")
    items = _block_items(data["layers"])
    locate.item_of_layer[:] = [k for k, _ in items]
    return ModelConfig(layers=tuple(b for _, b in items), **kwargs)


def model_config_from_dict(
    data: Any, *, source: str | None = None, lines: LineMap | None = None
) -> ModelConfig:
    """Build a :class:`ModelConfig` from plain data; errors carry ``source`` and line."""
    return model_config_with_locator(data, source=source, lines=lines)[0]


def model_config_with_locator(
    data: Any, *, source: str | None = None, lines: LineMap | None = None
) -> tuple[ModelConfig, Locator]:
    locate = Locator(source, lines or {}, [])
    try:
        return _from_dict(data, locate), locate
    except ConfigError as e:
        raise locate(e) from None


def load_model_config(path: str | Path) -> ModelConfig:
    return load_model_config_located(path)[0]


def load_model_config_located(
    path: str | Path, sets: Sequence[str] = ()
) -> tuple[ModelConfig, Locator]:
    """Load a model YAML, with ``--set KEY=VALUE`` changes applied (:mod:`.overrides`); the
    locator places later errors (e.g. a bad length) in the file. An error in a field that a
    ``--set`` changed names ``--set`` as its source instead of a line of the file."""
    data, lines = load_yaml(path)
    if not sets:
        return model_config_with_locator(data, source=str(path), lines=lines)
    data = apply_sets(data, sets)
    try:
        return model_config_with_locator(data, source=str(path), lines=lines)
    except ConfigError as e:
        changed = [parse_set(t)[0] for t in sets]
        field = re.sub(r"\[(\d+)\]", r".\1", e.field)
        if any(field == ".".join(k) or field.startswith(".".join(k) + ".") for k in changed):
            raise e.located(source=f"{path} --set", line=0) from None
        raise


def parse_model_config(text: str, *, source: str = "<string>") -> ModelConfig:
    data, lines = parse_yaml(text, source=source)
    return model_config_from_dict(data, source=source, lines=lines)


def model_config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """Plain data; runs of identical blocks are written once with ``repeat``."""
    out: dict[str, Any] = {name: getattr(cfg, name) for name in _MODEL_FIELDS}
    out["family"] = cfg.family.to_data()
    layers: list[dict[str, Any]] = []
    prev: BlockConfig | None = None
    for block in cfg.layers:
        if block == prev:
            layers[-1]["repeat"] = layers[-1].get("repeat", 1) + 1
            continue
        item: dict[str, Any] = {"mlp_ratio": block.mlp_ratio, "mixer": block.mixer.to_dict()}
        layers.append(item)
        prev = block
    # repeat first, for readability
    out["layers"] = [
        {"repeat": item.pop("repeat"), **item} if "repeat" in item else item for item in layers
    ]
    return out


def dump_model_config(cfg: ModelConfig) -> str:
    return yaml.safe_dump(
        model_config_to_dict(cfg), sort_keys=False, default_flow_style=None, width=100
    )
