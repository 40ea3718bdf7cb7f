"""``archsearch worker`` (join a study from any machine) and ``archsearch study recover``."""

from __future__ import annotations

import os

import typer

from archsearch.cli._common import echo_json, user_errors
from archsearch.cli._live import study_view
from archsearch.cli._options import SEED, THREADS, TRIALS
from archsearch.cli._usage import bounded
from archsearch.errors import ConfigError

STORAGE_HELP = (
    "The study's storage: postgresql://USER@HOST/DB (several machines), journal:PATH or a "
    "*.journal file (several processes on one machine), sqlite:///PATH (one process). Default: "
    "$ARCHSEARCH_STORAGE (keeps a password out of the process list)."
)
STORAGE_ENV = "ARCHSEARCH_STORAGE"  # archsearch.search.storage.STORAGE_ENV (not imported: torch)
STUDY_HELP = "Look after a study: recover the trials of dead workers."


@user_errors
def worker_cmd(
    storage: str | None = typer.Option(
        None, "--storage", envvar=STORAGE_ENV, show_envvar=False, help=STORAGE_HELP
    ),
    study: str = typer.Option(
        ..., "--study", help="The study to join (made by archsearch search)."
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        "-n",
        callback=TRIALS,
        help="Finished trials the study should hold (default: the number its search asked for).",
    ),
    threads: int | None = typer.Option(
        None, "--threads", callback=THREADS, help="CPU threads for torch."
    ),
    device: str | None = typer.Option(
        None, "--device", help="GPU index this worker uses (sets CUDA_VISIBLE_DEVICES)."
    ),
    heartbeat: int = typer.Option(
        30,
        "--heartbeat",
        callback=bounded(1, 86_400),
        help="Seconds between heartbeats (database storages): a "
        "trial silent for twice that is failed and queued again.",
    ),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, nsga2, gp or random."),
    seed: int | None = typer.Option(
        None, "--seed", callback=SEED, help="Sampler seed (default: none)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary, no live table."),
) -> None:
    """Join an existing study and run its trials until it holds enough finished ones; any
    number of workers, on any machines, may share one study."""
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device  # before torch is imported
    from archsearch.search.run import run_worker

    result = run_worker(
        _storage(storage),
        study,
        trials=trials,
        threads=threads,
        heartbeat=heartbeat,
        sampler=sampler,
        seed=seed,
        view=lambda name, n, settings: study_view(name, n, settings, quiet=as_json),
    )
    if as_json:
        echo_json(result)
    if result["interrupted"]:
        raise typer.Exit(code=130)


@user_errors
def recover_cmd(
    storage: str | None = typer.Option(
        None, "--storage", envvar=STORAGE_ENV, show_envvar=False, help=STORAGE_HELP
    ),
    study: str = typer.Option(..., "--study", help="Study name."),
    any_host: bool = typer.Option(
        False, "--all", help="Treat every running trial as dead (only when no worker runs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the recovered trial numbers."),
) -> None:
    """Fail the trials of dead workers and queue them again (journal files have no heartbeat;
    a worker of this machine is dead when its process is gone)."""
    from archsearch.search.storage import load_study, recover_trials, storage_errors

    st, url = load_study(_storage(storage), study, exclusive=True)
    with storage_errors(url):
        numbers = recover_trials(st, any_host=any_host)
    if as_json:
        echo_json({"recovered": numbers})
        return
    typer.echo(
        f"recovered trials {numbers}: failed and queued again" if numbers else "no dead trial"
    )


def _storage(storage: str | None) -> str:
    if not storage:
        raise ConfigError("--storage", None, f"a storage URL or path (or ${STORAGE_ENV})")
    return storage
