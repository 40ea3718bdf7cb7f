"""``archsearch claims``: the papers' claims tested with equal-compute runs over seeds, written as
a report (run by :func:`archsearch.search.claims.run_claims`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from archsearch.cli._common import echo_json, esc, invocation, user_errors
from archsearch.cli._usage import bounded
from archsearch.errors import ConfigError

DEFAULT_SPEC = Path("reports/claims/claims.yaml")


@user_errors
def claims_cmd(
    ctx: typer.Context,
    scale: str = typer.Option("cpu", "--scale", "-s", help="Scale of the spec: cpu or gpu."),
    quick: bool = typer.Option(
        False, "--quick", help="Smoke check: fewer seeds, smaller budgets (not evidence)."
    ),
    workers: int = typer.Option(
        1, "--workers", "-w", callback=bounded(1, 64), help="Runs trained at once (processes)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="Hardware preset instead of the scale's (a name or YAML)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", callback=bounded(1, 1024), help="torch CPU threads per worker."
    ),
    spec_path: Path = typer.Option(
        DEFAULT_SPEC, "--spec", help="The claims declaration (scales, experiments, claims)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Report folder (default: the spec's folder; runs/claims-quick with --quick).",
    ),
    report_only: bool = typer.Option(
        False, "--report-only", help="Redraw README.md and the figures from the saved records."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary, no progress."),
) -> None:
    """Train the claims study's runs the report still lacks (a re-run resumes), then write
    README.md (verdicts, tables, figures) and results.csv."""
    from archsearch.outputs import check_writable_dir
    from archsearch.search.claims import load_spec, write_report

    if not spec_path.exists():
        raise ConfigError(
            "--spec",
            str(spec_path),
            "an existing claims YAML (the default is relative to a clone of the repository)",
        )
    spec = load_spec(spec_path, profile=profile)
    root = out or (Path("runs/claims-quick") if quick else spec.path.parent)
    check_writable_dir(root, "--out")
    if report_only:
        path = write_report(spec, root)
        summary: dict[str, Any] = {"report": str(path)}
        echo_json(summary) if as_json else typer.echo(f"wrote {path}")
        return
    threads = threads if threads is not None else (1 if workers > 1 else None)
    summary = _run(spec, scale, root, quick, workers, threads, invocation(ctx), as_json)
    if as_json:
        echo_json(summary)
    else:
        typer.echo(
            f"{summary['runs_trained']} runs trained in {summary['seconds'] / 60:.1f} min "
            f"({summary['runs_before']} were done, {summary['runs_left']} left); "
            f"wrote {summary['report']}"
        )
    if summary["interrupted"]:
        typer.echo("interrupted: finished runs are saved; run the same command to resume", err=True)
        raise typer.Exit(code=130)


def _run(
    spec: Any,
    scale: str,
    root: Path,
    quick: bool,
    workers: int,
    threads: int | None,
    command: str,
    quiet: bool,
) -> dict[str, Any]:
    from rich import progress as rp
    from rich.console import Console

    from archsearch.search.claims import run_claims

    cols = (
        rp.TextColumn("{task.description}"),
        rp.BarColumn(),
        rp.MofNCompleteColumn(),
        rp.TimeElapsedColumn(),
        rp.TimeRemainingColumn(),
    )
    # started once every experiment is checked, so a bad spec or budget is one line, no bar
    bar = rp.Progress(*cols, console=Console(stderr=True), disable=quiet)
    tid = bar.add_task("claims runs", total=None)

    def on_plan(done: int, todo: int) -> None:
        bar.update(tid, total=todo, description=f"claims runs ({done} already done)")
        bar.start()

    def on_run(unit: tuple[str, str, int], what: str) -> None:
        exp, model, seed = unit
        if what == "start":
            bar.update(tid, description=esc(f"{exp}: {model} seed {seed}"))
            return
        bar.advance(tid)
        bar.console.print(esc(f"{exp}: {model} seed {seed}: {what}"))

    try:
        return run_claims(
            spec, scale, root, quick=quick, workers=workers, threads=threads, command=command,
            on_run=on_run, on_plan=on_plan,
        )  # fmt: skip
    finally:
        if bar.live.is_started:
            bar.stop()
