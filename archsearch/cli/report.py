"""``archsearch report``: a study's results as files people open (the report of a search).

TEMPORARY: moved verbatim out of cli/search.py; the reports branch owns this module.
"""

from __future__ import annotations

from pathlib import Path

import typer

from archsearch.cli._common import echo_json, invocation, user_errors
from archsearch.errors import ConfigError


@user_errors
def report_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(
        ...,
        help="A search output folder (with study.db), a SQLite file or a storage URL.",
    ),
    study: str | None = typer.Option(
        None, "--study", help="Study name (needed when the storage holds several)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: FOLDER/report, or runs/report/STUDY)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Pareto plot, hypervolume, importances, per-family table, trials.csv, report.md and the
    Pareto-optimal models as YAML, from a study."""
    import optuna

    from archsearch.search.report import write_report
    from archsearch.search.study import open_storage, storage_url, study_names

    path = Path(source)
    if "://" in source:
        url, default_out = source, None
    elif path.is_dir():
        if not (path / "study.db").exists():
            raise ConfigError("SOURCE", source, "a folder with a study.db, a .db file or a URL")
        url, default_out = storage_url(path / "study.db"), path / "report"
    elif path.is_file():
        url, default_out = storage_url(path), path.parent / "report"
    else:
        raise ConfigError("SOURCE", source, "an existing folder, a .db file or a storage URL")
    storage = open_storage(url, create=False)
    names = study_names(storage)
    if study is None:
        if len(names) != 1:
            raise ConfigError(
                "--study", None, "one of " + (", ".join(names) or "(the storage has no study)")
            )
        study = names[0]
    elif study not in names:
        raise ConfigError("--study", study, "one of " + (", ".join(names) or "(none)"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = optuna.load_study(study_name=study, storage=storage)
    rep = write_report(
        st, out or default_out or Path("runs/report") / study, command=invocation(ctx)
    )
    if as_json:
        echo_json(rep)
        return
    typer.echo(
        f"{rep['trials']} trials, {len(rep['front'])} on the front, hypervolume "
        f"{rep['hypervolume']:.4f}\nwrote {rep['out']}/report.md ("
        + ", ".join(Path(f).name for f in rep["files"].values())
        + ")"
    )
