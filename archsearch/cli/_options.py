"""Option parsing shared by several commands (counts, task options, help texts); no torch."""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand

from archsearch.cli._usage import bounded
from archsearch.dataconf import MAX_COUNT
from archsearch.errors import ConfigError
from archsearch.yamlio import parse_yaml

#: option callbacks: the bounds of the numeric options (one-line errors, checked at parsing)
SEED = bounded(0, 2**31 - 1)
TRIALS = bounded(1, 100_000)
THREADS = bounded(1, 4096)
WORKERS = bounded(1, 256)
SEQ_LEN = bounded(1, 2**24)
BATCH = bounded(1, 65_536)
EVALS = bounded(0, 1_000_000)
STEPS = bounded(1, 10**9)
LR = bounded(0, 10, integer=False, lo_open=True)
SECONDS = bounded(0, 10**9, integer=False, lo_open=True)


def sets_option() -> Any:
    """``--set KEY=VALUE`` (repeatable): change a field of every model file given."""
    import typer

    return typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Change a model field (repeatable), e.g. --set d_model=256 "
        "--set layers.0.mixer.n_heads=8.",
    )


SAMPLER_HELP = "tpe (default, multi-objective TPE), nsga2, gp (logEHVI) or random."


MAX_FLOPS = 1e30
"""largest FLOP budget an option takes"""

_POWERS = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def _scaled(text: str) -> float:
    """'2.5m' -> 2.5e6, '3e13' -> 3e13, '30T' -> 3e13 (powers of 1000), '4Ki' -> 4096 (powers
    of 1024, spelled out); -1 when unreadable."""
    t = text.strip().lower().replace("_", "")
    mult, cut = _BINARY.get(t[-2:], 1), 2
    if mult == 1:
        mult, cut = _POWERS.get(t[-1:], 1), 1
    try:
        value = float(t[:-cut] if mult > 1 else t) * mult
    except ValueError:
        return -1.0
    return value if value == value and value != float("inf") else -1.0


def parse_count(text: str, field: str) -> int:
    """'250000', '250k', '2.5m', '1g', '1e6' (powers of 1000) -> int, at most ``MAX_COUNT``."""
    value = _scaled(text)
    if value < 1 or value > MAX_COUNT or value != int(value):
        raise ConfigError(
            field,
            text,
            "a positive integer up to 1e15, optionally with k, m, g or t (x1000; 1k = 1,000) "
            "or Ki, Mi, Gi (x1024; 1Ki = 1,024)",
        )
    return int(value)


def parse_flops(text: str | None, field: str) -> float | None:
    """'3e13', '30T', '3.5e13', '300g' -> FLOPs as a float (None when the option was not given)."""
    if text is None:
        return None
    value = _scaled(text)
    if value <= 0 or value > MAX_FLOPS:
        raise ConfigError(field, text, "a positive number of FLOPs up to 1e30, e.g. 3e13 or 30T")
    return value


def parse_optional_count(text: str | None, field: str) -> int | None:
    """:func:`parse_count`, or None when the option was not given."""
    return None if text is None else parse_count(text, field)


def parse_task_options(items: list[str]) -> dict[str, Any]:
    """``["num_pairs=8", "power_a=null"]`` -> values parsed as YAML scalars (through the
    guarded loader: tags, aliases and deep nesting get the same one-line errors as files)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--task-opt", item, "KEY=VALUE, e.g. num_pairs=8")
        try:
            out[key.strip()] = parse_yaml(raw, source=f"--task-opt {key.strip()}")[0]
        except ConfigError as e:
            if e.field != "yaml" or e.got is not None:
                raise  # a tag, alias or size the loader refuses: never silently text
            out[key.strip()] = raw  # not YAML at all (e.g. 'a: b: c'): the text itself
    return out


def one_of(names: list[str] | tuple[str, ...]) -> str:
    """('lm', 'mqar', 'scifar') -> 'lm, mqar or scifar'."""
    return " or ".join(filter(None, (", ".join(names[:-1]), *names[-1:])))


TASKS_PLACEHOLDER = "{tasks}"


class TaskHelpCommand(TyperCommand):
    """A command whose option help may name the registered tasks: ``{tasks}`` in a help text
    becomes 'lm, mqar or scifar'. They are looked up only when the command's own help is shown
    (that imports torch), so ``archsearch --help`` stays fast."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from archsearch.quality.tasks import task_names

        for param in self.params:
            text = getattr(param, "help", None)
            if text and TASKS_PLACEHOLDER in text:
                param.help = text.replace(TASKS_PLACEHOLDER, one_of(task_names()))
        super().format_help(ctx, formatter)
