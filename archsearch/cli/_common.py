"""Shared CLI plumbing: one-line errors with exit status 2, number formatting, consoles.

Nothing here imports torch, so ``archsearch --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from archsearch.cli._usage import one_line
from archsearch.dataconf import MAX_SEQ_LEN
from archsearch.errors import ConfigError
from archsearch.fmt import si  # noqa: F401  (re-exported: the one number format)

F = TypeVar("F", bound=Callable[..., Any])

PROFILE_HELP = "Hardware preset: a YAML path or a shipped name (cpu, h100-bf16, a100-bf16, ...)."

#: set by ``archsearch --debug``: show tracebacks instead of one-line errors
DEBUG = {"on": False}


def esc(value: Any) -> str:
    """``value`` as text rich prints literally: user text (a model's name, a path, a reason) may
    hold ``[...]``, which rich would read as markup (or fail on, as ``[/]``)."""
    from rich.markup import escape

    return escape(str(value))


def user_errors(fn: F) -> F:
    """Turn a :class:`ConfigError` into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            if DEBUG["on"]:
                raise
            typer.echo(f"error: {one_line(str(e))}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def parse_length(text: str) -> int:
    """'4096', '4k' or '4Ki' (= 4096), '1m' or '1Mi' (= 1048576): a window length counts in
    powers of 1024 (unlike token and step counts, where k is 1000); at most
    :data:`MAX_SEQ_LEN`."""
    t = text.strip().lower()
    if t[-2:] in ("ki", "mi"):
        t = t[:-1]
    mult = {"k": 1024, "m": 1024 * 1024}.get(t[-1:], 1)
    body = t[:-1] if mult > 1 else t
    allowed = (
        f"a positive integer up to {MAX_SEQ_LEN:,} (16m), optionally with k or m, which for a "
        "length mean 1,024 and 1,048,576 (4k = 4Ki = 4,096)"
    )
    if not body.isdigit() or len(body) > 12:  # int() also takes '1_0', ' 1', '١'
        raise ConfigError("seq_len", text, allowed)
    value = int(body) * mult
    if not 1 <= value <= MAX_SEQ_LEN:
        raise ConfigError("seq_len", text, allowed)
    return value


def echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2))


def checked_profile(spec: str) -> Any:
    """Load a profile (path or shipped name) and fail with one line if its device is missing."""
    from archsearch.profiling.profiles import check_device, load_profile, resolve_profile_path

    prof = load_profile(spec)
    check_device(prof, source=str(resolve_profile_path(spec)))
    return prof


def invocation(ctx: typer.Context) -> str:
    """The running command as a user would type it: arguments, then the options that differ
    from their defaults (rebuilt from the parsed values, so it is right under any runner)."""
    import shlex

    words: list[str] = []
    for p in ctx.command.params:
        value = ctx.params.get(p.name or "")
        if p.param_type_name == "argument":
            words += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
            continue
        if value == p.default or value is None or value == [] or p.name == "help":
            continue
        if getattr(p, "is_flag", False):
            names = p.opts if value else getattr(p, "secondary_opts", [])
            if names:
                words.append(names[0])
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            words += [p.opts[0], str(v)]
    return " ".join([ctx.command_path, *(shlex.quote(w) for w in words)])
