"""``archsearch report``: a study's results as files people open (docs/search.md, "Reports").

The search's CLI registers :func:`report_cmd` as the ``report`` command. Its source is a search
output folder (with ``study.db``), a SQLite file or a storage URL, from which the records are
saved and the report drawn; or a report folder without a study database, whose figures,
``families.csv`` and ``report.md`` are drawn again from its saved files (``trials.csv``,
``curves.csv``, ``fidelity.csv``, ``study.json``, ``importances.csv``) without the study.
With two sources (``archsearch report A B``) it compares the two studies instead
(:mod:`archsearch.search.report_pair`): both fronts in one plot and their hypervolumes on one
shared scale.
"""

from __future__ import annotations

from pathlib import Path

import typer

from archsearch.cli._common import echo_json, invocation, user_errors
from archsearch.errors import ConfigError

SOURCE_HELP = (
    "A search output folder (with study.db), a SQLite file or a storage URL; or a report "
    "folder, whose figures and report.md are drawn again from its saved CSV files."
)


@user_errors
def report_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., help=SOURCE_HELP),
    other: str | None = typer.Argument(
        None,
        help="A second source (any of the above): compare the two studies (same objectives) "
        "in one plot and one hypervolume table with a shared normalisation.",
        show_default=False,
    ),
    study: list[str] | None = typer.Option(
        None,
        "--study",
        help="Study name (needed when the storage holds several). With two sources: once for "
        "both, or twice (A's, then B's).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder (default: FOLDER/report, runs/report/STUDY, or the report folder; "
        "two sources: runs/report/A-vs-B).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    force: bool = typer.Option(
        False, "--force", help="Write into an --out folder holding other files or another report."
    ),
) -> None:
    """Pareto plot, hypervolume, importances, per-family table, trials.csv, report.md and the
    Pareto-optimal models as YAML, from a study (or redrawn from a saved report); with two
    sources, the two studies' fronts and hypervolumes side by side."""
    names = list(study or [])
    if len(names) > (2 if other else 1):
        raise ConfigError("--study", names, "one name (two with two sources: A's, then B's)")
    if other is not None:
        _pair(ctx, source, other, names, out, force=force, as_json=as_json)
        return
    from archsearch.search.report_source import make_report

    name = names[0] if names else None
    rep = make_report(source, study=name, out=out, force=force, command=invocation(ctx))
    if as_json:
        echo_json(rep)
        return
    typer.echo(
        f"{rep['trials']} trials, {len(rep['front'])} on the front, hypervolume "
        f"{rep['hypervolume']:.4f}\nwrote {rep['out']}/report.md ("
        + ", ".join(Path(f).name for f in rep["files"].values())
        + ")"
    )


def _pair(
    ctx: typer.Context,
    a: str,
    b: str,
    names: list[str],
    out: Path | None,
    *,
    force: bool,
    as_json: bool,
) -> None:
    from archsearch.search.report_pair import write_pair

    studies = (names[0], names[-1]) if names else (None, None)
    rep = write_pair(a, b, studies=studies, out=out, force=force, command=invocation(ctx))
    if as_json:
        echo_json(rep)
        return
    for row in rep["studies"]:
        typer.echo(
            f"{row['study']}: {row['front']} on the front, hypervolume "
            f"{row['hypervolume_shared']:.4f} (shared normalisation)"
        )
    typer.echo(
        f"wrote {rep['out']}/pair.md ("
        + ", ".join(Path(f).name for f in rep["files"].values())
        + ")"
    )
