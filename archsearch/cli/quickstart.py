"""``archsearch quickstart``: the main job on embedded defaults.

A real multi-objective search on ``search_spaces/quickstart.yaml`` (small byte-level models on the
embedded corpus, on the CPU): sample, profile, train with successive halving, and write the report
with the Pareto plot to ``runs/quickstart/report/``. Re-running resumes the study.
"""

from __future__ import annotations

from pathlib import Path

import typer

from archsearch.cli._common import PROFILE_HELP, checked_profile, echo_json, invocation, user_errors
from archsearch.cli._live import echo_report_line, study_view
from archsearch.cli._options import SAMPLER_HELP, SEED, TRIALS, parse_flops, parse_optional_count


@user_errors
def quickstart_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(Path("runs/quickstart"), "--out", "-o", help="Output folder."),
    trials: int = typer.Option(16, "--trials", "-n", callback=TRIALS, help="Trials in the study."),
    budget_tokens: str | None = typer.Option(
        None, "--budget-tokens", help="Training tokens per trial: an equal-tokens study."
    ),
    budget_flops: str | None = typer.Option(
        None,
        "--budget-flops",
        help="Training FLOPs per trial (default: the space's, 6e11): an equal-compute study.",
    ),
    sampler: str = typer.Option("tpe", "--sampler", help=SAMPLER_HELP),
    seed: int = typer.Option(0, "--seed", callback=SEED, help="Sampler seed."),
    profile: str = typer.Option("cpu", "--profile", "-p", help=PROFILE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary, no live table."),
) -> None:
    """Search the quickstart space (bits per byte vs FLOPs, on the CPU, a few minutes) and
    write the report with its Pareto plot."""
    from archsearch.search.run import run_search

    result = run_search(
        "quickstart",
        trials=trials,
        profile=checked_profile(profile),
        sampler=sampler,
        seed=seed,
        out=out,
        budget_tokens=parse_optional_count(budget_tokens, "--budget-tokens"),
        budget_flops=parse_flops(budget_flops, "--budget-flops"),
        command=invocation(ctx),
        view=lambda name, n, settings: study_view(name, n, settings, quiet=as_json),
    )
    if as_json:
        echo_json(result)
    else:
        echo_report_line(result["report"])
        if not result["interrupted"]:
            typer.echo(f"open {out / 'report' / 'report.md'} and {out / 'report' / 'pareto.png'}")
    if result["interrupted"]:
        typer.echo("interrupted: run the same command again to resume", err=True)
        raise typer.Exit(code=130)
