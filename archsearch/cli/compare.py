"""``archsearch compare``: a few models over several seeds at one budget (run by
:func:`archsearch.search.compare.compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from archsearch.cli._common import (
    PROFILE_HELP,
    checked_profile,
    echo_json,
    esc,
    invocation,
    user_errors,
)
from archsearch.cli._options import (
    BATCH,
    EVALS,
    LR,
    SEQ_LEN,
    TASKS_PLACEHOLDER,
    parse_flops,
    parse_optional_count,
    parse_task_options,
    sets_option,
)
from archsearch.cli._usage import bounded
from archsearch.errors import ConfigError

_SEEDS = typer.Option(
    3,
    "--seeds",
    callback=bounded(1, 100),
    help="Seeds per model (0..S-1): init and data order.",
)
_SEQ_LEN = typer.Option(
    None,
    "--seq-len",
    "-T",
    callback=SEQ_LEN,
    help="Training window T (default: the first model's max_seq_len).",
)


@user_errors
def compare_cmd(
    ctx: typer.Context,
    models: list[Path] = typer.Argument(
        ..., metavar="MODEL.yaml...", help="Model config YAMLs; the first is the baseline."
    ),
    seeds: int = _SEEDS,
    budget_flops: str | None = typer.Option(
        None, "--budget-flops", help="Training FLOPs per run (3e13, 30T): equal compute."
    ),
    budget_tokens: str | None = typer.Option(
        None, "--budget-tokens", help="Training tokens per run (250k = 250,000): equal data."
    ),
    task: str = typer.Option("lm", "--task", "-t", help=TASKS_PLACEHOLDER + "."),
    data: str | None = typer.Option(
        None, "--data", help="lm: a text file or folder, enwik8, ... (as for train)."
    ),
    task_opts: list[str] = typer.Option(
        [], "--task-opt", "-O", help="Task option KEY=VALUE (repeatable), e.g. num_pairs=8."
    ),
    seq_len: int | None = _SEQ_LEN,
    batch_size: int = typer.Option(16, "--batch-size", "-b", callback=BATCH),
    lr: float = typer.Option(2e-3, "--lr", callback=LR, help="Peak learning rate (AdamW)."),
    evals: int | None = typer.Option(
        None,
        "--evals",
        callback=EVALS,
        help="Held-out evaluations after step 0 (default: as many as fit in ~7% of the compute, "
        "1 to 8).",
    ),
    profile: str = typer.Option("cpu", "--profile", "-p", help=PROFILE_HELP),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL or SQLite path (default OUT/compare.db)."
    ),
    study: str = typer.Option("compare", "--study", help="Study name in the storage."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default runs/compare/FIRST-vs-...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary, no progress."),
    sets: list[str] = sets_option(),
) -> None:
    """Train each MODEL over several seeds at one budget (runs one after another; a re-run
    resumes); write compare.csv, runs.csv, compare.png and compare.md."""
    from archsearch.outputs import check_writable_dir, folder_name
    from archsearch.quality.train import TrainConfig
    from archsearch.search.compare import compare, prepare

    if budget_flops is not None and budget_tokens is not None:
        raise ConfigError("--budget-flops", budget_flops, "either it or --budget-tokens, not both")
    flops = parse_flops(budget_flops, "--budget-flops")
    tokens = parse_optional_count(budget_tokens, "--budget-tokens")
    prof = checked_profile(profile)
    tcfg = TrainConfig(
        budget_flops=flops,
        budget_tokens=tokens if tokens is not None or flops is not None else 200_000,
        batch_size=batch_size,
        lr=lr,
        evals=evals,
        compile=prof.compile,
    )
    comp = prepare(
        models,
        seeds=seeds,
        task=task,
        task_options={**parse_task_options(task_opts), **({"data": data} if data else {})},
        seq_len=seq_len,
        train_cfg=tcfg,
        profile=prof,
        sets=sets,
    )
    out = out or Path("runs/compare") / folder_name("-vs-".join(m.name for m in comp.models))
    check_writable_dir(out, "--out")
    summary = _run(compare, comp, out, storage, study, invocation(ctx), quiet=as_json)
    if as_json:
        echo_json(summary)
    else:
        _print_table(summary, comp.task.metric)
    if summary["interrupted"]:
        typer.echo("interrupted: finished runs are saved; run the same command to resume", err=True)
        raise typer.Exit(code=130)


def _run(
    fn: Any, comp: Any, out: Path, storage: str | None, study: str, command: str, quiet: bool
) -> Any:
    import sys

    from rich import progress as rp
    from rich.console import Console

    if not quiet and not sys.stderr.isatty():
        hooks = _plain_hooks(comp)
        return fn(comp, out, storage=storage, study_name=study, command=command, **hooks)
    cols = (
        rp.TextColumn("{task.description}"),
        rp.BarColumn(),
        rp.TaskProgressColumn(),
        rp.TextColumn("loss {task.fields[loss]}"),
        rp.TimeElapsedColumn(),
    )
    total = len(comp.models) * comp.seeds
    with rp.Progress(*cols, console=Console(stderr=True), disable=quiet) as bar:
        tid = bar.add_task("runs", total=total, loss="-")
        state = {"done": 0}

        def on_run(model: str, seed: int, what: str) -> None:
            if what == "start":
                bar.update(tid, description=f"{esc(model)} seed {seed}")
                return
            state["done"] += 1
            bar.update(tid, completed=state["done"])
            done = "already done" if what == "skip" else what
            bar.console.print(esc(f"{model} seed {seed}: {done}"))

        def on_step(step: int, progress: float, loss: float, tps: float) -> None:
            bar.update(tid, completed=state["done"] + min(progress, 1.0), loss=f"{loss:.4f}")

        return fn(
            comp, out, storage=storage, study_name=study, command=command, on_run=on_run,
            on_step=on_step,
        )  # fmt: skip


def _plain_hooks(comp: Any) -> dict[str, Any]:
    """Progress as plain lines on stderr, for a log file, a pipe or CI: one per run start, per
    held-out evaluation and per run end."""
    total, metric = len(comp.models) * comp.seeds, comp.task.metric
    state = {"n": 0}

    def say(text: str) -> None:
        typer.echo(text, err=True)

    def on_run(model: str, seed: int, what: str) -> None:
        if what == "start":
            say(f"run {state['n'] + 1}/{total}: {model} seed {seed} started")
            return
        state["n"] += 1
        done = "already done" if what == "skip" else what
        say(f"run {state['n']}/{total}: {model} seed {seed} {done}")

    def on_eval(model: str, seed: int, point: Any) -> None:
        value = point.metrics.get(metric)
        shown = "-" if value is None else f"{value:.4f}"
        say(
            f"  {model} seed {seed}: step {point.step}, {point.tokens:,} tokens, "
            f"{100 * point.progress:.0f}% of the budget, held-out {metric} {shown}"
        )

    return {"on_run": on_run, "on_eval": on_eval}


def _print_table(summary: dict[str, Any], metric: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{metric}: mean and 95% interval over seeds")
    for col in ("model", "n", "mean", "95% interval", "paired diff to first (95%)"):
        t.add_column(col, justify="left" if col == "model" else "right")

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}"

    for r in summary["models"]:
        diff = "-"
        if r["diff_vs_first"] is not None:
            diff = f"{r['diff_vs_first']:+.4f} [{f(r['diff_ci95_low'])}, {f(r['diff_ci95_high'])}]"
        ci = f"[{f(r['ci95_low'])}, {f(r['ci95_high'])}]"
        t.add_row(esc(r["model"]), str(r["n"]), f(r["mean"]), ci, diff)
    Console().print(t)
    typer.echo("wrote " + ", ".join(summary["files"].values()))
