"""Typed construction of frozen config dataclasses from plain dicts (YAML), and back.

One place turns user data into configs, so every type error reads the same way: the field path,
the bad value, and the type or values allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, get_origin

from archsearch.errors import ConfigError

T = TypeVar("T")

# Upper bounds on every size a config may ask for, checked before anything is built. Generous:
# the largest model they allow is far past what fits several 139 GiB GPUs, so no real
# configuration meets them; they exist so a typo (d_model: 10^9) is one line, not a hang.
# Documented in docs/search.md, "Spaces".
MAX_D_MODEL = 1 << 16
"""widest model (65,536)"""
MAX_VOCAB = 1 << 22
"""largest vocabulary (4,194,304)"""
MAX_SEQ_LEN = 1 << 24
"""longest sequence, for max_seq_len, --seq-len and a space's seq_len (16,777,216)"""
MAX_LAYERS = 1024
"""most blocks in a stack (after ``repeat``), and a space's n_layers"""
MAX_HEADS = 1 << 12
"""most heads in one mixer (4,096)"""
MAX_MLP_RATIO = 64.0
"""widest MLP, as a multiple of d_model"""
MAX_COUNT = 10**15
"""largest count an option takes (tokens, steps, trials): 10^15"""
MAX_BATCH = 1 << 16
"""largest batch size (65,536)"""


def check_int(field: str, value: Any, low: int, high: int) -> int:
    """``value`` as an integer in [low, high], or a :class:`ConfigError` naming the bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(field, value, f"an integer from {low} to {high:,}")
    return value


def check_number(
    field: str, value: Any, low: float, high: float, *, open_low: bool = False
) -> float:
    """A finite number in [low, high] (or (low, high] with ``open_low``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (low < value if open_low else low <= value) and value <= high  # False for nan
    if not ok:
        lo = "> " if open_low else ">= "
        raise ConfigError(field, value, f"a number {lo}{low:g} and <= {high:g}")
    return float(value)


def check_name(field: str, value: Any, names: Any) -> str:
    """A name (a string) for a registry lookup; lists and mappings are refused here, not hashed."""
    if not isinstance(value, str):
        raise ConfigError(field, value, "a name: one of " + ", ".join(names))
    return value


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, field: str) -> Any:
    """Check ``value`` against annotation ``tp``; ints are accepted where floats are expected."""
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        raise ConfigError(field, value, _describe(tp))
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return coerce(arg, value, field)
            except ConfigError:
                continue
        raise ConfigError(field, value, _describe(tp))
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(field, value, "null")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(field, value, "true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(field, value, "an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(field, value, "a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(field, value, "a string")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(field, value, "a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], v, f"{field}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(field, value, f"a list of {len(args)} items")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(coerce(a, v, f"{field}[{i}]") for i, (a, v) in pairs)
    if tp is Any:
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {field}")  # a bug in archsearch, not input


def from_dict(cls: type[T], data: Any, *, prefix: str = "", skip: tuple[str, ...] = ()) -> T:
    """Build dataclass ``cls`` from a mapping, checking names and types of every field.

    ``skip`` names keys that the caller handles itself (for example ``kind``).
    Errors from the dataclass's own ``__post_init__`` get ``prefix`` added to their field.
    """
    if not isinstance(data, dict):
        raise ConfigError(prefix or cls.__name__, data, "a mapping of field: value")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in skip:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(path, value, "one of the fields " + ", ".join(sorted(fields)))
        kwargs[key] = coerce(hints[key], value, path)
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in kwargs and no_default:
            path = f"{prefix}.{name}" if prefix else name
            raise ConfigError(path, allowed=_describe(hints[name]) + " (required)")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise e.located(prefix=prefix) from None


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain dict of a flat config dataclass, tuples as lists (YAML-friendly)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def kinded_from_dict(
    data: Any,
    *,
    prefix: str,
    lookup: Callable[[str], Any],
    names: Callable[[], list[str]],
    what: str,
    shape: str,
) -> Any:
    """``{kind: NAME, <fields>}`` -> ``lookup(NAME).Config`` built from the fields.

    ``what`` names the registry ("mixer", "family") and ``shape`` describes the allowed forms,
    for the error messages.
    """
    if not isinstance(data, dict):
        raise ConfigError(prefix, data, shape)
    if "kind" not in data:
        raise ConfigError(f"{prefix}.kind", allowed=f"a registered {what}: " + ", ".join(names()))
    check_name(f"{prefix}.kind", data["kind"], names())
    try:
        cls = lookup(data["kind"])
    except ConfigError as e:
        raise e.located(prefix=prefix) from None
    return from_dict(cls.Config, data, prefix=prefix, skip=("kind",))
