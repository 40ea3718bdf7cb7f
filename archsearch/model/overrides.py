"""``--set KEY=VALUE``: change a model file's fields on the command line before it is validated.

``KEY`` is a dotted path into the YAML document; integers index lists (``layers.0.mixer.n_heads``
is the first ``layers`` entry's mixer, which may stand for several blocks through ``repeat``).
``VALUE`` is read as one YAML value (``8``, ``2.5e-3``, ``true``, ``null``, ``rope``,
``{kind: softmax, n_heads: 4}``), with the same guarded loader as the files. The changed
document is then validated as a whole, so a bad value gets the same one-line error as in YAML,
with ``--set`` named as its source.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from archsearch.errors import ConfigError
from archsearch.yamlio import parse_yaml

_ALLOWED = "KEY=VALUE with KEY a dotted path of the model file (e.g. layers.0.mixer.n_heads=8)"


def parse_set(text: str) -> tuple[list[str], Any]:
    """``'layers.0.mixer.n_heads=8'`` -> (``['layers', '0', 'mixer', 'n_heads']``, 8)."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError("--set", text, _ALLOWED)
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p.strip() for p in parts):
        raise ConfigError("--set", text, _ALLOWED)
    try:
        value, _ = parse_yaml(raw, source="--set")
    except ConfigError as e:
        raise ConfigError("--set", text, f"a single YAML value after '=' ({e.allowed})") from None
    return [p.strip() for p in parts], value


def _step(node: Any, part: str, text: str, where: str) -> Any:
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(
                "--set", text, f"an index 0..{len(node) - 1} after '{where}' (a list there)"
            )
        return int(part)
    if isinstance(node, dict):
        return part
    raise ConfigError("--set", text, f"a path through mappings and lists ('{where}' is a value)")


def apply_sets(data: Any, sets: Sequence[str]) -> Any:
    """A copy of the parsed model document with every ``--set`` applied in order (a missing
    mapping key is added; the whole document is validated afterwards)."""
    if not sets:
        return data
    out = copy.deepcopy(data)
    if not isinstance(out, dict):
        raise ConfigError("--set", sets[0], "a model file whose top level is a mapping")
    for text in sets:
        parts, value = parse_set(text)
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            key = _step(node, part, text, ".".join(parts[:i]) or "the top level")
            if isinstance(node, dict) and key not in node:
                node[key] = {}
            node = node[key]
        last = _step(node, parts[-1], text, ".".join(parts[:-1]) or "the top level")
        node[last] = value
    return out
