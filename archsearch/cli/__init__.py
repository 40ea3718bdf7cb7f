"""The ``archsearch`` command line (typer): the app, and every command registered here, in one
place. Command modules only define their functions; none imports another or this module, and
they import torch (and the torch-heavy parts of archsearch) lazily, inside their bodies, so
``archsearch --help`` stays fast."""

from __future__ import annotations

import os

import typer

from archsearch import __version__
from archsearch.cli import (
    build,
    claims,
    compare,
    dashboard,
    doctor,
    families,
    mixers,
    profile,
    quickstart,
    report,
    search,
    train,
    worker,
)
from archsearch.cli._common import DEBUG
from archsearch.cli._options import TaskHelpCommand
from archsearch.cli._usage import OneLineGroup

app = typer.Typer(
    name="archsearch",
    cls=OneLineGroup,
    help="Architecture search and complexity profiling for efficient-attention language models.",
    no_args_is_help=True,
    add_completion=True,
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


app.command("build")(build.build_cmd)
app.command("families")(families.families_cmd)
app.command("mixers")(mixers.mixers_cmd)
app.command("profile")(profile.profile_cmd)
app.command("scale")(profile.scale_cmd)
app.command("train", cls=TaskHelpCommand)(train.train_cmd)
app.command("search", cls=TaskHelpCommand)(search.search_cmd)
app.command("compare", cls=TaskHelpCommand)(compare.compare_cmd)
app.command("claims")(claims.claims_cmd)
app.command("report")(report.report_cmd)
app.command("quickstart")(quickstart.quickstart_cmd)
study_app = typer.Typer(help=worker.STUDY_HELP, no_args_is_help=True)
study_app.command("recover")(worker.recover_cmd)
app.add_typer(study_app, name="study")
app.command("worker")(worker.worker_cmd)
app.command("doctor")(doctor.doctor_cmd)
app.command("dashboard")(dashboard.dashboard_cmd)


def main() -> None:
    # OpenMP threads that wait by sleeping, not spinning, unless the user chose: a second job
    # on the machine then costs its share of the cores, not half the throughput of both
    # (benchmarks/threads_corun.py; README, "Threads"). Set before torch loads OpenMP.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
