"""``archsearch report``: a study's results as files people open (docs/search.md, "Reports").

The search's CLI registers :func:`report_cmd` as the ``report`` command. Its source is a search
output folder (with ``study.db``), a SQLite file or a storage URL, from which the records are
saved and the report drawn; or a report folder without a study database, whose figures,
``families.csv`` and ``report.md`` are drawn again from its saved files (``trials.csv``,
``curves.csv``, ``fidelity.csv``, ``study.json``, ``importances.csv``) without the study.
"""

from __future__ import annotations

from pathlib import Path

import typer

from archsearch.cli._common import echo_json, invocation, user_errors


@user_errors
def report_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(
        ...,
        help="A search output folder (with study.db), a SQLite file or a storage URL; or a "
        "report folder, whose figures and report.md are drawn again from its saved CSV files.",
    ),
    study: str | None = typer.Option(
        None, "--study", help="Study name (needed when the storage holds several)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder (default: FOLDER/report, runs/report/STUDY, or the report folder).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    force: bool = typer.Option(
        False, "--force", help="Write into an --out folder holding other files or another report."
    ),
) -> None:
    """Pareto plot, hypervolume, importances, per-family table, trials.csv, report.md and the
    Pareto-optimal models as YAML, from a study (or redrawn from a saved report)."""
    from archsearch.search.report_source import make_report

    rep = make_report(source, study=study, out=out, force=force, command=invocation(ctx))
    if as_json:
        echo_json(rep)
        return
    typer.echo(
        f"{rep['trials']} trials, {len(rep['front'])} on the front, hypervolume "
        f"{rep['hypervolume']:.4f}\nwrote {rep['out']}/report.md ("
        + ", ".join(Path(f).name for f in rep["files"].values())
        + ")"
    )
