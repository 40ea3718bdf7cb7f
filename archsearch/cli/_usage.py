"""Usage errors as one line: ``error: --workers: got 0; allowed: an integer ≥ 1``.

Click and typer print a usage line and a boxed panel for a bad option value, a missing
argument or an unknown option or command. :class:`OneLineGroup` (the root command's class)
runs the command line with click's error handling off and prints every usage error in the
same one-line form as a :class:`~archsearch.errors.ConfigError`, with exit status 2. Help
(``--help``, or a group run without its subcommand) prints as before, on stdout, exit 0.
No torch here.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from archsearch.cli._help import tidy_help

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as cx
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as cx


def one_line(text: str) -> str:
    """``text`` with its line breaks (and other control characters) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _option_name(param: Any) -> str:
    if param is None:
        return "argument"
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.name or "argument").upper()
    opts = list(getattr(param, "opts", []) or [])
    longs = [o for o in opts if o.startswith("--")]
    return (longs or opts or [param.name or "option"])[0]


def _command(ctx: Any) -> str:
    """'archsearch study recover', whatever the program was called."""
    names = []
    while ctx is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["archsearch", *reversed(names[:-1])])


def _help_of(param: Any) -> str:
    text = " ".join((getattr(param, "help", None) or "a value").split()).rstrip(".")
    return text[:1].lower() + text[1:]


def _value_help(ctx: Any, opt: str) -> str:
    for p in ctx.command.get_params(ctx) if ctx is not None else []:
        if opt in (getattr(p, "opts", None) or []):
            return _help_of(p)
    return "a value"


def _options_of(ctx: Any) -> str:
    if ctx is None:
        return "see --help"
    names = []
    for p in ctx.command.get_params(ctx):
        if getattr(p, "param_type_name", "") == "option" and p.opts:
            longs = [o for o in p.opts if o.startswith("--")] or p.opts
            names.append("/".join([longs[0], *p.secondary_opts]))
    return "one of " + ", ".join(names)


def _usage(ctx: Any) -> str:
    """'archsearch build [OPTIONS] MODEL' (arguments by name; a variadic one with '...')."""
    if ctx is None:
        return "archsearch"
    words = [_command(ctx), "[OPTIONS]"]
    for p in ctx.command.get_params(ctx):
        if getattr(p, "param_type_name", "") == "argument":
            words.append(_option_name(p) + ("..." if getattr(p, "nargs", 1) == -1 else ""))
    if hasattr(ctx.command, "list_commands"):
        words.append("COMMAND")
    return " ".join(words)


#: click's messages for a value its own types refused -> (value, what is allowed)
_CLICK_TYPES = [
    (re.compile(r"^'?(?P<v>.*?)'? is not a valid integer( range)?\.?$", re.S), "an integer"),
    (re.compile(r"^'?(?P<v>.*?)'? is not a valid float( range)?\.?$", re.S), "a number"),
    (re.compile(r"^'?(?P<v>.*?)'? is not a valid boolean\.?$", re.S), "true or false"),
    (re.compile(r"^'?(?P<v>.*?)'? is not one of (?P<a>.*?)\.?$", re.S), "one of {a}"),
    (re.compile(r"^(?P<v>.*?) is not in the range (?P<a>.*?)\.?$", re.S), "{a}"),
]


#: pydantic's error types (typer >= 0.2x validates with it) -> what is allowed
_VALIDATION = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "finite_number": "a finite number",
    "greater_than_equal": "a number ≥ {ge}",
    "greater_than": "a number > {gt}",
    "less_than_equal": "a number ≤ {le}",
    "less_than": "a number < {lt}",
}


def _from_validation(e: cx.BadParameter) -> str | None:
    """'got VALUE; allowed: WHAT' from the pydantic error behind a typer BadParameter."""
    errors = getattr(e.__cause__, "errors", None)
    if not callable(errors):
        return None
    try:
        err = errors()[0]
    except Exception:  # noqa: BLE001 - anything odd: fall back to the message
        return None
    ctx = err.get("ctx") or {}
    what = _VALIDATION.get(err.get("type", ""))
    if what is None:
        what = str(err.get("msg", "")).removeprefix("Input should be ")
    else:
        what = what.format(**{k: ctx.get(k, "?") for k in ("ge", "gt", "le", "lt")})
    return f"got {err.get('input')!r}; allowed: {what}"


def _bad_value(e: cx.BadParameter) -> str:
    name = _option_name(e.param) if e.param is not None else (e.param_hint or "value")
    msg = e.message
    if msg.startswith("got ") or msg.startswith("missing;"):
        return f"{name}: {msg}"
    validated = _from_validation(e)
    if validated is not None:
        return f"{name}: {validated}"
    for pattern, allowed in _CLICK_TYPES:
        m = pattern.match(msg)
        if m:
            what = allowed.format(a=m.groupdict().get("a", "")).replace(">=", "≥")
            return f"{name}: got {m['v']!r}; allowed: {what}"
    return f"{name}: {msg}"


def _missing(e: cx.MissingParameter) -> str:
    p = e.param
    name = _option_name(p)
    if getattr(p, "param_type_name", "") == "argument":
        return f"{name}: missing; allowed: {_help_of(p)}, as in {_usage(e.ctx)}"
    return f"{name}: missing; allowed: {_help_of(p)}"


def _no_such_command(e: cx.UsageError) -> str | None:
    m = re.match(r"^No such command '(?P<n>.*)'\.", e.message, re.S)
    if not m or e.ctx is None or not hasattr(e.ctx.command, "list_commands"):
        return None
    names = e.ctx.command.list_commands(e.ctx)
    return f"{_command(e.ctx)} {m['n']}: no such command; allowed: one of {', '.join(names)}"


def usage_line(e: cx.ClickException) -> str:
    """A click error as one line (without the ``error: `` prefix)."""
    if isinstance(e, cx.NoSuchOption):
        return f"{e.option_name}: no such option; allowed: {_options_of(e.ctx)}"
    if isinstance(e, cx.MissingParameter):
        return _missing(e)
    if isinstance(e, cx.BadParameter):
        return _bad_value(e)
    if isinstance(e, cx.UsageError):
        line = _no_such_command(e)
        if line is not None:
            return line
        m = re.match(r"^Got unexpected extra arguments? ?(\(s\))? \((?P<a>.*)\)$", e.message, re.S)
        if m:
            return f"{m['a']}: unexpected extra argument; allowed: {_usage(e.ctx)}"
        m = re.match(r"^Option '(?P<o>.*)' requires an? (?P<w>.*?)\.?$", e.message, re.S)
        if m:
            return f"{m['o']}: missing value; allowed: {_value_help(e.ctx, m['o'])} after {m['o']}"
        return f"{e.format_message().rstrip('.')}; usage: {_usage(e.ctx)}"
    return e.format_message()


def _print_help(e: cx.UsageError) -> None:
    typer.echo(e.format_message())


class OneLineGroup(TyperGroup):
    """The root command: usage errors as one line on stderr with exit status 2, and help
    texts and placeholders tidied (:func:`~archsearch.cli._help.tidy_help`) before it runs."""

    def main(self, args: Any = None, prog_name: Any = None, *a: Any, **kw: Any) -> Any:
        tidy_help(self, self.context_class(self))
        standalone = kw.pop("standalone_mode", True)
        if not standalone:
            return super().main(args, prog_name, *a, standalone_mode=False, **kw)
        try:
            rv = super().main(args, prog_name, *a, standalone_mode=False, **kw)
        except cx.NoArgsIsHelpError as e:
            _print_help(e)
            sys.exit(0)
        except cx.ClickException as e:
            typer.echo(f"error: {one_line(usage_line(e))}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def bounded(
    lo: float | None = None,
    hi: float | None = None,
    *,
    integer: bool = True,
    lo_open: bool = False,
) -> Any:
    """An option callback refusing values outside [lo, hi] (and nan or infinity) with a
    one-line error: ``--lr: got nan; allowed: a finite number > 0``."""
    kind = "an integer" if integer else "a finite number"
    above = f"> {_num(lo)}" if lo_open else f"≥ {_num(lo)}"
    if lo is not None and hi is not None:
        span = f"{above} and ≤ {_num(hi)}" if lo_open else f"from {_num(lo)} to {_num(hi)}"
        allowed = f"{kind} {span}"
    elif lo is not None:
        allowed = f"{kind} {above}"
    else:
        allowed = kind if hi is None else f"{kind} ≤ {_num(hi)}"

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        ok = value == value and value not in (float("inf"), float("-inf"))
        if ok and lo is not None:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value <= hi
        if not ok:
            raise typer.BadParameter(f"got {value!r}; allowed: {allowed}", param=param)
        return value

    return check


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and x == int(x) else str(x)
