"""Structural model families: how a model is wired around its per-layer blocks.

A mixer (``archsearch.mixers``) maps ``(B, T, D) -> (B, T, D)`` inside one block. A *family*
decides what the stack does with the sequence: ``decoder`` runs every block over all T positions
and scores all of them; ``perceiver_ar`` reads the M inputs once into N latents and runs the
blocks over the latents only; the Mahmood & Huang variants (``v1_double``, ``v2_split``,
``v3_compress``) split the window into a context and latents and own their attention block. Every
family scores the **last** ``n_scored(T)`` positions of a window of T tokens.

This module holds the family *configs* and the registry; it imports no model code, so
``archsearch.model.config`` can use it. The models live in ``archsearch.model.transformer``
(``decoder``), ``archsearch.model.perceiver_ar`` and ``archsearch.model.mh_perceiver``, each a
:class:`archsearch.model.transformer.LanguageModel` subclass registered with
``@register_family(name)``; ``cls.Config`` is its config class.

YAML: ``family: decoder`` (a family without fields may be written as its name), or a mapping
``family: {kind: perceiver_ar, n_latents: 512, cross_dropout: 0.1, rope_fraction: 0.5}``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from archsearch.dataconf import from_dict, kinded_from_dict, to_dict
from archsearch.errors import ConfigError

if TYPE_CHECKING:
    from archsearch.model.config import ModelConfig


@dataclass(frozen=True, kw_only=True)
class FamilyConfig:
    """Hyper-parameters of one structural family; subclasses add scalar fields and validate them
    in ``__post_init__``. ``kind`` is set by ``@register_family``."""

    kind: ClassVar[str] = ""

    def check(self, model: ModelConfig) -> None:  # noqa: B027
        """Checks that need the whole model (width, layers, max_seq_len).

        Raise :class:`ConfigError` with the full field path (``family.n_latents``,
        ``layers[0].mixer.kind``, ...), the value and what is allowed."""

    def check_seq_len(self, model: ModelConfig, seq_len: int) -> None:  # noqa: B027
        """Checks that need the window length T."""

    def n_scored(self, seq_len: int) -> int:
        """How many positions of a T-token window get logits and loss: always the last ones."""
        return seq_len

    def stack_seq_len(self, seq_len: int) -> int:
        """The length the ``layers`` mixers run at (what their ``check(seq_len)`` sees)."""
        return seq_len

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **to_dict(self)}

    def to_data(self) -> str | dict[str, Any]:
        """YAML form: the bare name for a family without fields, else a mapping."""
        return self.kind if not dataclasses.fields(self) else self.to_dict()

    def replace(self, **changes: Any) -> FamilyConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class DecoderConfig(FamilyConfig):
    """The plain decoder-only stack: every block over all T positions; loss on all T."""

    kind: ClassVar[str] = "decoder"


# ---------------------------------------------------------------------------------------------
# registry: name -> model class (a LanguageModel subclass with a ``Config``)

_FAMILIES: dict[str, Any] = {}

C = TypeVar("C")


def register_family(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: register a model class (with a nested ``Config``) under ``name``."""

    def deco(cls: C) -> C:
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} is already registered by {_FAMILIES[name]!r}")
        config = getattr(cls, "Config", None)
        if not (isinstance(config, type) and issubclass(config, FamilyConfig)):
            raise TypeError(f"@register_family({name!r}) needs a class with a FamilyConfig Config")
        config.kind = name
        _FAMILIES[name] = cls
        return cls

    return deco


def unregister_family(name: str) -> None:
    """Remove a registration (for tests that register throw-away families)."""
    _FAMILIES.pop(name, None)


def list_families(pattern: str = "*") -> list[str]:
    return sorted(n for n in _FAMILIES if fnmatch.fnmatch(n, pattern))


def get_family(name: str) -> Any:
    """The model class registered as ``name`` (its ``.Config`` is the config class)."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            "kind", name, "a registered family: " + ", ".join(list_families())
        ) from None


def family_config_from_data(data: Any, *, prefix: str = "family") -> FamilyConfig:
    """``"decoder"`` or ``{kind: perceiver_ar, ...}`` -> a validated family config."""
    if isinstance(data, str):
        try:
            cls = get_family(data)
        except ConfigError as e:
            raise ConfigError(prefix, data, e.allowed) from None
        return from_dict(cls.Config, {}, prefix=prefix)
    cfg: FamilyConfig = kinded_from_dict(
        data,
        prefix=prefix,
        lookup=get_family,
        names=list_families,
        what="family",
        shape="a family name or a mapping {kind: ..., <the family's fields>}",
    )
    return cfg
