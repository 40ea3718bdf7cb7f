"""``archsearch report``: a study's results as files people open (docs/search.md, "Reports").

The search's CLI registers :func:`report_cmd` as the ``report`` command. Its source is a search
output folder (with ``study.db``), a SQLite file or a storage URL, from which the records are
saved and the report drawn; or a report folder without a study database, whose figures,
``families.csv`` and ``report.md`` are drawn again from its saved files (``trials.csv``,
``curves.csv``, ``fidelity.csv``, ``study.json``, ``importances.csv``) without the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from archsearch.cli._common import echo_json, invocation, user_errors
from archsearch.errors import ConfigError
from archsearch.outputs import check_study_folder, check_writable_dir, folder_name, report_study

SOURCES = "a folder with a study.db, a report folder (trials.csv, study.json), a .db file or a URL"


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
    path = Path(source)
    if "://" not in source and path.is_dir() and not (path / "study.db").exists():
        rep = _redraw(source, path, out, force=force)
    else:
        rep = _from_study(ctx, source, path, study, out, force=force)
    if as_json:
        echo_json(rep)
        return
    typer.echo(
        f"{rep['trials']} trials, {len(rep['front'])} on the front, hypervolume "
        f"{rep['hypervolume']:.4f}\nwrote {rep['out']}/report.md ("
        + ", ".join(Path(f).name for f in rep["files"].values())
        + ")"
    )


def _redraw(source: str, folder: Path, out: Path | None, *, force: bool) -> dict[str, Any]:
    from archsearch.search.report import copy_saved, draw_report, is_saved_report

    if not is_saved_report(folder):
        raise ConfigError("SOURCE", source, SOURCES)
    check_writable_dir(out or folder, "--out")
    if out is not None and out.resolve() != folder.resolve():
        check_study_folder(out, "--out", report_study(folder) or "", force=force)
        copy_saved(folder, out)
        folder = out
    return draw_report(folder)


def _from_study(
    ctx: typer.Context, source: str, path: Path, study: str | None, out: Path | None, force: bool
) -> dict[str, Any]:
    import optuna

    from archsearch.search.report import write_report
    from archsearch.search.storage import open_storage, storage_errors, storage_url, study_names

    if "://" in source:
        url, default_out = source, None
    elif path.is_dir():
        url, default_out = storage_url(path / "study.db"), path / "report"
    elif path.is_file():
        url, default_out = storage_url(path), path.parent / "report"
    else:
        raise ConfigError("SOURCE", source, SOURCES)
    storage = open_storage(url, create=False, write=False)
    with storage_errors(url):
        names = study_names(storage)
    if study is None:
        if len(names) != 1:
            raise ConfigError(
                "--study", None, "one of " + (", ".join(names) or "(the storage has no study)")
            )
        study = names[0]
    elif study not in names:
        raise ConfigError("--study", study, "one of " + (", ".join(names) or "(none)"))
    out = out or default_out or Path("runs/report") / folder_name(study)
    check_writable_dir(out, "--out")
    check_study_folder(out, "--out", study, force=force)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_errors(url):
        st = optuna.load_study(study_name=study, storage=storage)
    return write_report(st, out, command=invocation(ctx))
