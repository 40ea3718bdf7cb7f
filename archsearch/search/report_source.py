"""Where a report comes from: a search folder, a study file or URL, or a saved report folder
(docs/search.md, "Reports"). Shared by ``archsearch report`` and :func:`archsearch.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from archsearch.errors import ConfigError
from archsearch.outputs import check_study_folder, check_writable_dir, folder_name, report_study
from archsearch.search.report import (
    StudyData,
    copy_saved,
    draw_report,
    is_saved_report,
    load_saved,
    write_report,
)
from archsearch.search.storage import open_storage, storage_errors, storage_url, study_names

SOURCES = "a folder with a study.db, a report folder (trials.csv, study.json), a .db file or a URL"


def make_report(
    source: str,
    *,
    study: str | None = None,
    out: Path | None = None,
    force: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Write (or redraw) the report of ``source``; what was written, as for ``--json``."""
    path = Path(source)
    if "://" not in source and path.is_dir() and not (path / "study.db").exists():
        return _redraw(source, path, out, force=force)
    return _from_study(source, path, study, out, force=force, command=command)


def _redraw(source: str, folder: Path, out: Path | None, *, force: bool) -> dict[str, Any]:
    if not is_saved_report(folder):
        raise ConfigError("SOURCE", source, SOURCES)
    check_writable_dir(out or folder, "--out")
    if out is not None and out.resolve() != folder.resolve():
        check_study_folder(out, "--out", report_study(folder) or "", force=force)
        copy_saved(folder, out)
        folder = out
    return draw_report(folder)


def _from_study(
    source: str, path: Path, study: str | None, out: Path | None, *, force: bool, command: str
) -> dict[str, Any]:
    st, default_out = open_source_study(source, path, study)
    out = out or default_out or Path("runs/report") / folder_name(st.study_name)
    check_writable_dir(out, "--out")
    check_study_folder(out, "--out", st.study_name, force=force)
    return write_report(st, out, command=command)


def open_source_study(
    source: str, path: Path, study: str | None
) -> tuple[optuna.Study, Path | None]:
    """The study in a search folder, a study file or a URL (``study`` names it when the storage
    holds several), and the report folder it has by default (None for a URL)."""
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
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_errors(url):
        return optuna.load_study(study_name=study, storage=storage), default_out


def load_source(source: str, *, study: str | None = None) -> StudyData:
    """The study data of any report source (what ``archsearch report SOURCE`` accepts)."""
    path = Path(source)
    if "://" not in source and path.is_dir() and not (path / "study.db").exists():
        if not is_saved_report(path):
            raise ConfigError("SOURCE", source, SOURCES)
        return load_saved(path)[0]
    return StudyData.of_study(open_source_study(source, path, study)[0])
