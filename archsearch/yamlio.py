"""YAML loading that remembers the line of every key, so errors can point into the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import ConfigError

# (path of keys / list indices) -> 1-based line number
LineMap = dict[tuple[Any, ...], int]


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: LineMap) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k_node, v_node in node.value:
            key = yaml.safe_load(yaml.serialize(k_node))
            out[key] = _walk(v_node, path + (key,), lines)
            # a key's line, not its value's (a block value starts on the next line)
            lines[path + (key,)] = k_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, path + (i,), lines) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """Parse a YAML file into plain Python data plus a key-path -> line map.

    Unreadable files and malformed YAML raise :class:`ConfigError` naming the file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("path", str(p), "an existing YAML file", source=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("path", str(p), "a YAML file, not a directory", source=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("path", str(p), f"a readable UTF-8 file ({e})", source=str(p)) from None
    return parse_yaml(text, source=str(p))


def parse_yaml(text: str, *, source: str = "<string>") -> tuple[Any, LineMap]:
    lines: LineMap = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            "yaml",
            problem,
            "well-formed YAML",
            source=source,
            line=mark.line + 1 if mark else None,
        ) from None
    if node is None:
        return None, lines
    return _walk(node, (), lines), lines


def line_of(lines: LineMap, path: tuple[Any, ...]) -> int | None:
    """The line of the longest prefix of ``path`` that the map knows."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None
