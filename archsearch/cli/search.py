"""``archsearch search``: the multi-objective architecture search (run by
:func:`archsearch.search.run.run_search`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archsearch.cli._common import PROFILE_HELP, checked_profile, echo_json, invocation, user_errors
from archsearch.cli._live import echo_report_line, study_view
from archsearch.cli._options import (
    SAMPLER_HELP,
    SECONDS,
    SEED,
    THREADS,
    TRIALS,
    WORKERS,
    parse_flops,
    parse_optional_count,
    parse_task_options,
)
from archsearch.cli._usage import bounded

Space = Annotated[
    str,
    typer.Argument(
        help="Search space: a YAML path or a shipped name (quickstart, hsm_hybrid, ...)."
    ),
]
Trials = Annotated[
    int,
    typer.Option(
        "--trials", "-n", callback=TRIALS, help="Finished trials the study should hold (resumes)."
    ),
]
Task = Annotated[
    str | None,
    typer.Option("--task", help="Quality task: {tasks} (default: the space's)."),
]
TaskOpts = Annotated[
    list[str] | None,
    typer.Option(
        "--task-opt", "-O", help="Task option KEY=VALUE (repeatable), e.g. eval_tokens=8192."
    ),
]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna storage: a database URL (sqlite:///x.db, postgresql://...) or a SQLite file "
        "path (default OUT/study.db).",
    ),
]
Study = Annotated[
    str | None, typer.Option("--study", help="Study name (default: the space's name).")
]
Eta = Annotated[
    int | None,
    typer.Option(
        "--eta",
        help="Successive halving: keep 1/eta at each rung (default 3).",
    ),
]
Rungs = Annotated[
    int | None,
    typer.Option(
        "--rungs",
        help="Successive halving rungs, 1 = off (default 3: B/9, B/3, B).",
    ),
]
Budget = Annotated[
    str | None,
    typer.Option("--budget-tokens", help="Training tokens per trial (overrides the space's)."),
]
BudgetFlops = Annotated[
    str | None,
    typer.Option(
        "--budget-flops",
        help="Training FLOPs per trial (3e13, 30T): equal compute; rungs are fractions of it. "
        "Not with --budget-tokens.",
    ),
]
FrontSeeds = Annotated[
    int,
    typer.Option(
        "--front-seeds",
        callback=bounded(0, 100),
        help="After the study, train each front model with this many extra seeds; the report "
        "gives mean and 95% interval and marks the distinguishable points (default 0: off).",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option("--timeout", callback=SECONDS, help="Start no new trial after this many seconds."),
]
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        "-w",
        callback=WORKERS,
        help="Worker processes on this machine sharing the study "
        "(default storage then: OUT/study.journal).",
    ),
]
Devices = Annotated[
    str | None,
    typer.Option("--devices", help="GPU indices the workers are pinned to, round robin (0,1,2,3)."),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads", callback=THREADS, help="CPU threads per worker (default: cores / workers)."
    ),
]
Out = Annotated[
    Path | None, typer.Option("--out", "-o", help="Output folder (default runs/search/STUDY).")
]
Report = Annotated[
    bool,
    typer.Option("--report/--no-report", help="Write the report (OUT/report) at the end."),
]
SaveWeights = Annotated[
    bool,
    typer.Option(
        "--save-weights",
        help="Keep each complete trial's trained weights (OUT/weights); the report saves the "
        "front's as pareto/NAME.safetensors next to their model files.",
    ),
]
Track = Annotated[
    list[str] | None,
    typer.Option(
        "--track",
        help="Log every trial (parameters, metrics, learning curve) to mlflow:PATH (a local "
        "MLflow store) or tensorboard:PATH (event files); repeatable. Needs the extra: pip "
        "install 'archsearch\\[mlflow]' / 'archsearch\\[tensorboard]'.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary, no live table.")]
Force = Annotated[
    bool,
    typer.Option(
        "--force", help="Write into an --out folder holding other files or another study's report."
    ),
]


@user_errors
def search_cmd(
    ctx: typer.Context,
    space: Space,
    trials: Trials = 20,
    task: Task = None,
    task_opts: TaskOpts = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help=PROFILE_HELP)] = "cpu",
    storage: Storage = None,
    study: Study = None,
    sampler: Annotated[str, typer.Option("--sampler", help=SAMPLER_HELP)] = "tpe",
    seed: Annotated[int, typer.Option("--seed", callback=SEED, help="Sampler seed.")] = 0,
    eta: Eta = None,
    rungs: Rungs = None,
    budget_tokens: Budget = None,
    budget_flops: BudgetFlops = None,
    front_seeds: FrontSeeds = 0,
    timeout: Timeout = None,
    workers: Workers = 1,
    devices: Devices = None,
    threads: Threads = None,
    out: Out = None,
    report: Report = True,
    track: Track = None,
    as_json: Json = False,
    force: Force = False,
    save_weights: SaveWeights = False,
) -> None:
    """Multi-objective search over SPACE: sample, profile, train with successive halving; a
    live table of trials and the front; the study resumes when re-run."""
    from archsearch.search.run import run_search

    summary = run_search(
        space,
        trials=trials,
        task=task,
        task_options=parse_task_options(task_opts or []),
        profile=checked_profile(profile),
        storage=storage,
        study=study,
        sampler=sampler,
        seed=seed,
        eta=eta,
        rungs=rungs,
        budget_tokens=parse_optional_count(budget_tokens, "--budget-tokens"),
        budget_flops=parse_flops(budget_flops, "--budget-flops"),
        front_seeds=front_seeds,
        timeout=timeout,
        workers=workers,
        devices=devices,
        threads=threads,
        out=out,
        report=report,
        command=invocation(ctx),
        view=lambda name, n, settings: study_view(name, n, settings, quiet=as_json),
        force=force,
        save_weights=save_weights,
        track=track or [],
    )
    if report and not as_json:
        echo_report_line(summary["report"])
    if as_json:
        echo_json(summary)
    if summary.get("common_failure") and not summary["interrupted"]:
        typer.echo(f"error: no result: {summary['common_failure']}", err=True)
        raise typer.Exit(code=1)
    if summary["interrupted"]:
        typer.echo(
            "interrupted: finished trials are saved; run the same command again to resume",
            err=True,
        )
        raise typer.Exit(code=130)
