"""YAML loading that remembers the line of every key, so errors can point into the file.

Every YAML text a user gives archsearch (model configs, search spaces, profiles, ``--task-opt``
values) goes through :func:`parse_yaml`, which accepts plain data only and bounds what a hostile
file can cost: its size (:data:`MAX_BYTES`), its nesting (:data:`MAX_DEPTH`) and the number of
values it expands to, aliases included (:data:`MAX_NODES`, so a "billion laughs" file stops early).
Scalars may be strings, integers, floats, booleans and null, written plainly or with the standard
tags ``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``; any other tag, a key that is a list
or a mapping, a key given twice in one mapping, and a recursive alias are one-line errors.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import ConfigError, shown

# (path of keys / list indices) -> 1-based line number
LineMap = dict[tuple[Any, ...], int]

MAX_BYTES = 1 << 20
"""largest YAML document read (1 MiB; the shipped ones are a few KiB)"""
MAX_DEPTH = 100
"""deepest nesting of lists and mappings"""
MAX_NODES = 100_000
"""most values (scalars, lists, mappings) a document may expand to, counting every alias use"""

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_ALLOWED_TAGS = "plain scalars, lists and mappings (tags !!str, !!int, !!float, !!bool, !!null)"
_CONSTRUCT = yaml.SafeLoader("")
_WHAT = {"str": "text", "int": "an integer", "float": "a number", "bool": "true or false"}
# libyaml's parser when PyYAML has it (about 20x faster on a hostile 1 MiB document)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Walk:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: LineMap = {}
        self.count = 0
        self.open: set[int] = set()  # ids of the collections being walked (recursion check)

    def error(self, node: yaml.Node, field: str, got: str, allowed: str) -> ConfigError:
        line = node.start_mark.line + 1
        return ConfigError(field, allowed=allowed, source=self.source, line=line, got=got)

    def walk(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            got = f"more than {MAX_NODES} values (aliases count once per use)"
            raise self.error(node, "yaml", got, "a smaller document")
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self.open:
            raise self.error(node, "yaml", "a recursive alias", "aliases to finished values")
        if len(self.open) >= MAX_DEPTH:
            got = f"nesting deeper than {MAX_DEPTH}"
            raise self.error(node, "yaml", got, "a shallower document")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _TAG + "seq":
                    raise self.error(node, "yaml", f"tag {node.tag!r}", _ALLOWED_TAGS)
                return [self.walk(v, path + (i,)) for i, v in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: tuple[Any, ...]) -> dict[Any, Any]:
        if node.tag != _TAG + "map":
            raise self.error(node, "yaml", f"tag {node.tag!r}", _ALLOWED_TAGS)
        out: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for k_node, v_node in node.value:
            if not isinstance(k_node, yaml.ScalarNode):
                got = "a list or mapping as a key"
                raise self.error(k_node, "yaml", got, "a plain scalar key (a name)")
            self.count += 1
            key = self.scalar(k_node)
            if node.flow_style and _empty(v_node):
                got = f"key {shown(key)} with no value"
                raise self.error(k_node, "yaml", got, "key: value in a {...} mapping")
            line = k_node.start_mark.line + 1
            if key in first:
                field = ".".join(str(p) for p in (*path, key))
                got = f"a duplicate key (first on line {first[key]})"
                raise self.error(k_node, field, got, "each key once per mapping")
            first[key] = line
            out[key] = self.walk(v_node, path + (key,))
            # a key's line, not its value's (a block value starts on the next line)
            self.lines[path + (key,)] = line
        return out

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _TAG + "timestamp":
            return node.value  # a date is text here (names, notes)
        if tag == _TAG + "merge":
            raise self.error(node, "yaml", "a merge key '<<'", "keys written out")
        if tag not in _SCALAR_TAGS:
            raise self.error(node, "yaml", f"tag {tag!r}", _ALLOWED_TAGS)
        try:
            return _CONSTRUCT.yaml_constructors[tag](_CONSTRUCT, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, LookupError):
            name = tag.removeprefix(_TAG)
            got = f"{shown(node.value)} tagged !!{name}"
            raise self.error(node, "yaml", got, _WHAT.get(name, name)) from None


def _empty(node: yaml.Node) -> bool:
    """An implicit null: nothing written after the key (``{kind: softmax, n_heads}``)."""
    return isinstance(node, yaml.ScalarNode) and node.value == "" and node.tag == _TAG + "null"


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """Parse a YAML file into plain Python data plus a key-path -> line map.

    Unreadable files, files over :data:`MAX_BYTES` and malformed YAML raise :class:`ConfigError`
    naming the file.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("path", str(p), "an existing YAML file", source=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("path", str(p), "a YAML file, not a directory", source=str(p)) from None
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError("path", str(p), f"a readable file ({why})", source=str(p)) from None
    if len(raw) > MAX_BYTES:
        raise _too_big(str(p))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        why = f"not UTF-8 at byte {e.start}"
        raise ConfigError("path", str(p), f"a UTF-8 text file ({why})", source=str(p)) from None
    return parse_yaml(text, source=str(p))


def _too_big(source: str) -> ConfigError:
    got = f"a document over {MAX_BYTES // 1024} KiB"
    return ConfigError("yaml", allowed="a smaller document", source=source, got=got)


def _check_events(text: str, source: str) -> None:
    """Refuse deep nesting and overlong documents before composing (PyYAML's composer recurses
    once per level and builds every node)."""

    def refuse(event: yaml.Event, got: str, allowed: str) -> ConfigError:
        line = event.start_mark.line + 1 if event.start_mark else None
        return ConfigError("yaml", allowed=allowed, source=source, line=line, got=got)

    depth = 0
    for n, event in enumerate(yaml.parse(text, Loader=_LOADER)):
        if n > MAX_NODES:
            raise refuse(event, f"more than {MAX_NODES} values", "a smaller document")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise refuse(event, f"nesting deeper than {MAX_DEPTH}", "a shallower document")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def parse_yaml(text: str, *, source: str = "<string>") -> tuple[Any, LineMap]:
    """:func:`load_yaml` for text already read (``source`` names it in errors)."""
    if len(text) > MAX_BYTES:
        raise _too_big(source)
    try:
        _check_events(text, source)
        node = yaml.compose(text, Loader=_LOADER)
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
        return None, {}
    w = _Walk(source)
    return w.walk(node, ()), w.lines


def line_of(lines: LineMap, path: tuple[Any, ...]) -> int | None:
    """The line of the longest prefix of ``path`` that the map knows."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def shipped_dir(kind: str) -> Path:
    """The folder of YAML files shipped as package data: ``archsearch/data/<kind>/`` (``profiles``,
    ``search_spaces``), found through :mod:`importlib.resources`, so an installed wheel has it."""
    return Path(str(files("archsearch") / "data" / kind))


def shipped_names(folder: Path) -> list[str]:
    """The names (file stems) of the YAML files in a shipped folder, sorted."""
    return sorted(x.stem for x in folder.glob("*.yaml"))


def resolve_shipped(spec: str | Path, folder: Path, *, field: str, what: str) -> Path:
    """A path that exists wins; else the name of a file shipped in ``folder`` (``cpu`` ->
    ``folder/cpu.yaml``); else a YAML path (a missing one fails when read, naming it) or a one-line
    error listing the shipped names (``what``: e.g. "a profile YAML path or a shipped preset")."""
    p = Path(spec)
    if p.exists():
        return p
    text = str(spec)
    shipped = folder / f"{text}.yaml"
    if "/" not in text and p.suffix == "" and shipped.is_file():
        return shipped
    if p.suffix in (".yaml", ".yml") or "/" in text:
        return p
    raise ConfigError(field, text, f"{what}: {', '.join(shipped_names(folder))}")
