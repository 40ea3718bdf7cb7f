"""``archsearch dashboard``: a study in optuna-dashboard (the optional extra
``archsearch[dashboard]``), with its objectives named and its learning curves drawn."""

from __future__ import annotations

from pathlib import Path

import typer

from archsearch.cli._common import user_errors
from archsearch.cli._usage import bounded
from archsearch.errors import ConfigError

#: the files a search folder keeps its study in (archsearch.search.run.OWN_FILES; not imported:
#: torch)
_STUDY_FILES = ("study.db", "study.journal")


def _storage_spec(study: str) -> str:
    """A storage URL or study file as given; a search's output folder: the study file in it."""
    path = Path(study).expanduser()
    if "://" in study or study.startswith("journal:") or not path.is_dir():
        return study
    found = [path / f for f in _STUDY_FILES if (path / f).is_file()]
    if not found:
        raise ConfigError(
            "STUDY",
            study,
            "a study file, a storage URL, or a search folder holding study.db or "
            "study.journal (this folder holds neither)",
        )
    return str(found[0])


@user_errors
def dashboard_cmd(
    study: str = typer.Argument(
        ...,
        help="The study: a search folder (runs/search/NAME), its study.db or study.journal, or "
        "a storage URL (sqlite:///..., postgresql://..., journal:PATH).",
    ),
    name: str | None = typer.Option(
        None, "--study", help="The study's name (default: the storage's only study)."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every network; no login)."
    ),
    port: int = typer.Option(8080, "--port", callback=bounded(0, 65_535), help="Port."),
    refresh: float = typer.Option(
        10.0,
        "--refresh",
        callback=bounded(0, 86_400, integer=False, lo_open=True),
        help="Seconds between updates of the learning-curve plot while the study runs.",
    ),
) -> None:
    """Open a study in optuna-dashboard: objectives by name, the Pareto front, every trial's
    parameters and metrics, and a plot of the learning curves (needs: pip install
    'archsearch\\[dashboard]')."""
    from archsearch.search.dashboard import curves_kept_current, make_server, require_dashboard

    require_dashboard()  # before the study is opened: the pip command, in one line
    from archsearch.search.storage import TrialStore, load_study, redact

    # write=False: a read-only study is shown too (its curve plot then is not saved: a note)
    st, url = load_study(_storage_spec(study), name, write=False)
    server = make_server(TrialStore(st).storage, host, port)
    shown = f"http://{host}:{server.server_port}/dashboard"

    def note(text: str) -> None:
        typer.echo(f"note: {text}", err=True)

    with curves_kept_current(st, refresh, note):
        typer.echo(f"optuna-dashboard on {redact(url)}: {shown} (Ctrl-C to stop)", err=True)
        _stop_on_signals(server)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def _stop_on_signals(server: object) -> None:
    """Ctrl-C and SIGTERM end ``serve_forever`` cleanly: the WSGI handler catches every
    exception of a request it is answering, so a KeyboardInterrupt arriving then was swallowed
    and the server served on."""
    import signal
    import threading

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()  # type: ignore[attr-defined]

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
