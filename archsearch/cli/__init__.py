"""The ``archsearch`` command line (typer). Commands import torch lazily, inside their bodies."""

from __future__ import annotations

import typer

from archsearch import __version__
from archsearch.cli._common import DEBUG

app = typer.Typer(
    name="archsearch",
    help="Architecture search and complexity profiling for efficient-attention language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"archsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    DEBUG["on"] = debug


# each module adds its command(s) to ``app``
from archsearch.cli import build, families, mixers, profile, quickstart, search, train, worker  # noqa: E402, F401, I001
from archsearch.cli.report import report_cmd  # noqa: E402, I001

app.command("report")(report_cmd)


def main() -> None:
    app()
