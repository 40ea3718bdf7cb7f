"""Mixer registry: ``@register_mixer(name)``, look-ups that fail loudly and list what exists."""

from __future__ import annotations

import fnmatch
from typing import Any, TypeVar

from archsearch.dataconf import from_dict
from archsearch.errors import ConfigError
from archsearch.mixers._base import MixerConfig, MixerContext, TokenMixer

_MIXERS: dict[str, type[TokenMixer]] = {}

M = TypeVar("M", bound=type[TokenMixer])


def register_mixer(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: register a TokenMixer subclass under ``name`` (a duplicate is an error)."""

    def deco(cls: M) -> M:
        if name in _MIXERS:
            raise ValueError(
                f"mixer {name!r} is already registered by {_MIXERS[name].__module__}."
                f"{_MIXERS[name].__qualname__}"
            )
        if not (isinstance(cls, type) and issubclass(cls, TokenMixer)):
            raise TypeError(f"@register_mixer({name!r}) needs a TokenMixer subclass, got {cls!r}")
        cls.Config.kind = name
        _MIXERS[name] = cls
        return cls

    return deco


def unregister_mixer(name: str) -> None:
    """Remove a registration (for tests that register throw-away mixers)."""
    _MIXERS.pop(name, None)


def list_mixers(pattern: str = "*") -> list[str]:
    return sorted(n for n in _MIXERS if fnmatch.fnmatch(n, pattern))


def get_mixer(name: str) -> type[TokenMixer]:
    try:
        return _MIXERS[name]
    except (KeyError, TypeError):  # TypeError: an unhashable value (a list)
        raise ConfigError("kind", name, "a registered mixer: " + ", ".join(list_mixers())) from None


def mixer_config(kind: str, **params: Any) -> MixerConfig:
    """``get_mixer(kind).Config(**params)`` with type checks on every field."""
    return from_dict(get_mixer(kind).Config, params)


def mixer_label(data: dict[str, Any]) -> str:
    """The label (:attr:`MixerConfig.label`) of a mixer given as plain data ``{kind, fields}``;
    its ``kind`` when the data is not a valid config (an unknown kind, an old record)."""
    params = {k: v for k, v in data.items() if k != "kind"}
    try:
        return mixer_config(data["kind"], **params).label
    except ConfigError:
        return str(data["kind"])


def build_mixer(cfg: MixerConfig, ctx: MixerContext) -> TokenMixer:
    return get_mixer(cfg.kind)(cfg, ctx)
