"""``archsearch worker`` (join a study from any machine) and ``archsearch study recover``."""

from __future__ import annotations

import os

import typer

from archsearch.cli import app
from archsearch.cli._common import echo_json, user_errors
from archsearch.errors import ConfigError

study_app = typer.Typer(help="Look after a study: recover the trials of dead workers.")
app.add_typer(study_app, name="study")

STORAGE_HELP = (
    "The study's storage: postgresql://USER@HOST/DB (several machines), journal:PATH or a "
    "*.journal file (several processes on one machine), sqlite:///PATH (one process)."
)


def load_study(storage: str, name: str, *, heartbeat: int | None = None) -> tuple[object, str]:
    import optuna

    from archsearch.search.study import open_storage, storage_url, study_names

    url = storage_url(storage)
    st = open_storage(url, create=False, heartbeat=heartbeat)
    names = study_names(st)
    if name not in names:
        raise ConfigError(
            "--study", name, "one of " + (", ".join(names) or "(the storage has no study)")
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=st), url


@app.command("worker")
@user_errors
def worker_cmd(
    storage: str = typer.Option(..., "--storage", help=STORAGE_HELP),
    study: str = typer.Option(
        ..., "--study", help="The study to join (made by archsearch search)."
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        "-n",
        min=1,
        help="Finished trials the study should hold (default: the number its search asked for).",
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    device: str | None = typer.Option(
        None, "--device", help="GPU index this worker uses (sets CUDA_VISIBLE_DEVICES)."
    ),
    heartbeat: int = typer.Option(
        30,
        "--heartbeat",
        min=1,
        help="Seconds between heartbeats (database storages): a "
        "trial silent for twice that is failed and queued again.",
    ),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, nsga2, gp or random."),
    seed: int | None = typer.Option(None, "--seed", help="Sampler seed (default: none)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary, no live table."),
) -> None:
    """Join an existing study and run its trials until it holds enough finished ones; any
    number of workers, on any machines, may share one study."""
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    from archsearch.cli.search import LiveView
    from archsearch.search.study import TARGET, Search, make_sampler, settings_of

    st, url = load_study(storage, study, heartbeat=heartbeat)
    target = trials or st.user_attrs.get(TARGET)
    if target is None:
        raise ConfigError("--trials", None, "a number of trials (the study does not record one)")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    settings = settings_of(st)
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")  # workers must not all draw the same
    st.sampler = make_sampler(sampler, seed, int(target))
    live = LiveView(study, int(target), settings, quiet=as_json)
    search = Search(st, settings, observer=live)
    with live:
        live.load(st)
        summary = search.run(int(target))
    result = {
        "study": study,
        "storage": url,
        "worker": search.worker,
        "finished": summary.finished,
        "ran": summary.ran,
        "interrupted": summary.interrupted,
        "outcomes": summary.outcomes,
    }
    if as_json:
        echo_json(result)
    if summary.interrupted:
        raise typer.Exit(code=130)


@study_app.command("recover")
@user_errors
def recover_cmd(
    storage: str = typer.Option(..., "--storage", help=STORAGE_HELP),
    study: str = typer.Option(..., "--study", help="Study name."),
    any_host: bool = typer.Option(
        False, "--all", help="Treat every running trial as dead (only when no worker runs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the recovered trial numbers."),
) -> None:
    """Fail the trials of dead workers and queue them again (journal files have no heartbeat;
    a worker of this machine is dead when its process is gone)."""
    from archsearch.search.study import recover_trials

    st, _ = load_study(storage, study)
    numbers = recover_trials(st, any_host=any_host)  # type: ignore[arg-type]
    if as_json:
        echo_json({"recovered": numbers})
        return
    typer.echo(
        f"recovered trials {numbers}: failed and queued again" if numbers else "no dead trial"
    )
