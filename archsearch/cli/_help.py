"""``--help`` that reads well: help texts without source line breaks or reStructuredText, and
value placeholders people read (``N``, ``TEXT``, ``PATH``; nothing for a flag) instead of
``<int>``, ``<str>``, ``<bool>``. :func:`tidy_help` sets them on every command of the app
before it runs; no torch here."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":[a-z]+:`~?(?:[^`<]*<)?([^`>]+)>?`")  # :func:`a.b`, :class:`~x.Y`
_LITERAL = re.compile(r"``(.+?)``")
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def clean_help(text: str | None) -> str | None:
    """A docstring or help text as one line per paragraph (list items keep their own line),
    without reStructuredText: ``:func:`pkg.mod.name``` -> ``name``, ````--json```` -> ``--json``.
    Lines starting with ``\\b`` (click's 'keep as is') and text after ``\\f`` are kept."""
    if not text:
        return text
    text = _LITERAL.sub(r"\1", _ROLE.sub(lambda m: m[1].rsplit(".", 1)[-1], text))
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if para.lstrip().startswith(("\b", "\f")):
            paragraphs.append(para)
            continue
        lines: list[str] = []
        for line in para.splitlines():
            if lines and not _ITEM.match(line):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _name_of(annotation: Any) -> str:
    name = getattr(annotation, "__name__", str(annotation)).lower()
    if "list" in name or "[" in name:
        inner = str(annotation).lower()
        name = next((n for n in ("path", "int", "float", "str") if n in inner), "str")
    return name


#: a value's type -> its placeholder
_PLACEHOLDER = {
    "int": "N",
    "integer": "N",
    "float": "NUMBER",
    "str": "TEXT",
    "text": "TEXT",
    "path": "PATH",
    "posixpath": "PATH",
    "windowspath": "PATH",
}


def _placeholder(param: Any) -> str:
    """``N``, ``NUMBER``, ``TEXT``, ``PATH`` or ``a|b|c`` for the value ``param`` takes."""
    desc = getattr(param, "type_descriptor", None)  # typer's own parameters (typer >= 0.2x)
    if desc is not None:
        if getattr(desc, "is_choice", False) and desc.choices:
            return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
        name = "path" if getattr(desc, "is_path", False) else _name_of(desc.annotation)
    else:  # click's parameter types
        ptype = getattr(param, "type", None)
        choices = getattr(ptype, "choices", None)
        if choices:
            return "|".join(map(str, choices))
        name = str(getattr(ptype, "name", "text")).lower()
    return _PLACEHOLDER.get(name, "VALUE")


def _no_type(ctx: Any = None) -> None:
    return None


def _tidy_param(param: Any) -> None:
    param.help = clean_help(getattr(param, "help", None))
    if getattr(param, "param_type_name", "") == "argument":
        param.metavar = (param.metavar or str(param.name).upper()).removesuffix("...")
        if hasattr(param, "display_type_rich"):  # typer >= 0.2x: the name says it, no '<path>'
            param.display_type_rich = _no_type
    elif getattr(param, "is_flag", False) or getattr(param, "count", False):
        param.metavar = ""
    elif param.metavar is None:
        param.metavar = _placeholder(param)


def tidy_help(command: Any, ctx: Any = None) -> None:
    """Clean the help of ``command``, its parameters and every subcommand (see the module's
    help); ``ctx`` lets the ``--help`` option itself be tidied."""
    command.help = clean_help(command.help)
    command.short_help = clean_help(getattr(command, "short_help", None))
    for param in command.params:
        _tidy_param(param)
    if ctx is not None:
        help_option = command.get_help_option(ctx)
        if help_option is not None:
            _tidy_param(help_option)
    for sub in (getattr(command, "commands", None) or {}).values():
        tidy_help(sub, ctx)
