"""``archsearch train``: a short, fair training run of one variant on one quality task."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from archsearch.cli._common import PROFILE_HELP, checked_profile, echo_json, esc, user_errors
from archsearch.cli._options import (
    BATCH,
    EVALS,
    LR,
    SECONDS,
    SEED,
    SEQ_LEN,
    STEPS,
    TASKS_PLACEHOLDER,
    parse_flops,
    parse_optional_count,
    parse_task_options,
    sets_option,
)
from archsearch.cli._usage import bounded
from archsearch.errors import ConfigError

FLOPS_HELP = (
    "Training FLOPs (3e13, 30T, ...): equal compute; the model's exact training FLOPs per window "
    "decide the steps. Not with --budget-tokens/--budget-steps."
)

SAVE_WEIGHTS_HELP = (
    "Also save the trained weights (a completed run's) to this .safetensors file; "
    "archsearch.load_trained(MODEL, PATH) rebuilds the model from the two."
)
_DATA = typer.Option(
    None,
    "--data",
    help="lm: a text file or folder, enwik8, a WikiText-103 raw or PG-19 folder, or 'stdlib' "
    "(the standard library's source, ~12 MB) (default: the embedded stdlib-docs corpus, "
    "'pydoc'); scifar: the CIFAR-10 python batches.",
)
_SEQ_LEN = typer.Option(
    None,
    "--seq-len",
    "-T",
    callback=SEQ_LEN,
    help="Training window T (default: the model's max_seq_len).",
)
_BUDGET_SECONDS = typer.Option(
    None,
    "--budget-seconds",
    callback=SECONDS,
    help="Training seconds (evaluation not counted).",
)
_WARMUP = typer.Option(
    0.05,
    "--warmup",
    callback=bounded(0, 1, integer=False),
    help="Warm-up fraction of the budget.",
)
_EVALS = typer.Option(
    None,
    "--evals",
    callback=EVALS,
    help="Held-out evaluations after step 0 (default: as many as fit in ~7% of the compute, "
    "1 to 8).",
)
_EVAL_STRIDE = typer.Option(
    None,
    "--eval-stride",
    callback=SEQ_LEN,
    help="lm: scored bytes per evaluation window (default min(T/2, scored positions)); "
    "use one value for every model you compare.",
)


@user_errors
def train_cmd(
    model: Path = typer.Argument(..., help="Model config YAML."),
    task: str = typer.Option("lm", "--task", "-t", help=TASKS_PLACEHOLDER + "."),
    data: str | None = _DATA,
    seq_len: int | None = _SEQ_LEN,
    budget_tokens: str | None = typer.Option(
        None, "--budget-tokens", help="Input tokens to train on (250k = 250,000; 4Ki = 4,096)."
    ),
    budget_flops: str | None = typer.Option(None, "--budget-flops", help=FLOPS_HELP),
    budget_steps: int | None = typer.Option(
        None, "--budget-steps", callback=STEPS, help="Optimizer steps."
    ),
    budget_seconds: float | None = _BUDGET_SECONDS,
    batch_size: int = typer.Option(16, "--batch-size", "-b", callback=BATCH),
    lr: float = typer.Option(2e-3, "--lr", callback=LR, help="Peak learning rate (AdamW)."),
    warmup: float = _WARMUP,
    evals: int | None = _EVALS,
    eval_stride: int | None = _EVAL_STRIDE,
    seed: int = typer.Option(0, "--seed", callback=SEED),
    task_opts: list[str] = typer.Option(
        [], "--task-opt", "-O", help="Task option KEY=VALUE (repeatable), e.g. num_pairs=8."
    ),
    profile: str = typer.Option("cpu", "--profile", "-p", help=PROFILE_HELP),
    compile_: bool | None = typer.Option(
        None, "--compile/--no-compile", help="torch.compile the model (default: the profile's)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default runs/train/MODEL-TASK)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite a result in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the result record as JSON."),
    sets: list[str] = sets_option(),
    save_weights: Path | None = typer.Option(None, "--save-weights", help=SAVE_WEIGHTS_HELP),
) -> None:
    """Train MODEL on a task within a budget; write result.json, curve.csv and curve.png."""
    from archsearch.model.config import load_model_config_located
    from archsearch.quality.report import write_result
    from archsearch.quality.tasks import TASKS, make_task
    from archsearch.quality.train import TrainConfig, check_budget_fits, fewest_tokens
    from archsearch.quality.train import train as run_training

    cfg_model, _ = load_model_config_located(model, sets)
    prof = checked_profile(profile)
    options = _task_options(task_opts, data=data, eval_stride=eval_stride)
    if seq_len is None and not getattr(TASKS.get(task), "sets_seq_len", False):
        seq_len = cfg_model.max_seq_len
    if all(b is None for b in (budget_tokens, budget_steps, budget_flops, budget_seconds)):
        raise ConfigError(
            "budget",
            allowed="one of --budget-tokens, --budget-flops, --budget-steps, --budget-seconds "
            "(e.g. --budget-tokens 250k)",
        )
    tcfg = TrainConfig(
        **_budgets(budget_tokens, budget_steps, budget_flops),
        budget_seconds=budget_seconds,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        evals=evals,
        seed=seed,
        compile=prof.compile if compile_ is None else compile_,
    )
    name = cfg_model.name or model.stem
    out = _out_folder(out, name, task, force=force)
    on_done = _weights_saver(save_weights, cfg_model, force=force)
    if seq_len is not None:  # held-out size from this run's budget (eval_tokens: auto)
        tokens = fewest_tokens(tcfg, seq_len, [cfg_model])
        options = TASKS[task].sized_options(options, tokens) if task in TASKS else options
    the_task = make_task(task, options, seq_len=seq_len)
    the_task.check_model(cfg_model, source=str(model))
    check_budget_fits(tcfg, the_task, cfg_model)
    res = _run(run_training, cfg_model, the_task, tcfg, prof, name, quiet=as_json, done=on_done)
    res.env["mfu"] = _mfu(res, prof)
    command = "archsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    _report(res, write_result(out, res, command=command), as_json=as_json)


def _out_folder(out: Path | None, name: str, task: str, *, force: bool) -> Path:
    """``--out`` (default runs/train/NAME-TASK, a safe folder name), checked before training:
    writable, and without an earlier run's files unless ``force``."""
    from archsearch.outputs import check_writable_dir, folder_name, refuse_overwrite
    from archsearch.quality.report import CURVE_CSV, CURVE_PNG, RESULT

    out = out or Path("runs/train") / folder_name(f"{name}-{task}")
    check_writable_dir(out, "--out")
    refuse_overwrite(out, "--out", (RESULT, CURVE_CSV, CURVE_PNG), force=force)
    return out


def _budgets(tokens: str | None, steps: int | None, flops: str | None) -> dict[str, Any]:
    """The token, step and FLOPs budgets (a FLOPs budget goes with neither of the others)."""
    if flops is not None and (tokens is not None or steps is not None):
        raise ConfigError(
            "--budget-flops", flops, "either it or --budget-tokens/--budget-steps, not both"
        )
    return {
        "budget_tokens": parse_optional_count(tokens, "--budget-tokens"),
        "budget_steps": steps,
        "budget_flops": parse_flops(flops, "--budget-flops"),
    }


def _task_options(items: list[str], *, data: str | None, eval_stride: int | None) -> dict[str, Any]:
    """The ``--task-opt`` values, with ``--data`` and ``--eval-stride`` when given."""
    options = parse_task_options(items)
    if data is not None:
        options["data"] = data
    if eval_stride is not None:
        options["eval_stride"] = eval_stride
    return options


def _mfu(res: Any, prof: Any) -> dict[str, Any]:
    """Achieved TFLOP/s (exact training FLOPs over training time) and MFU against the profile's
    peak (on the CPU: this machine's calibrated one), with the peak's source or why there is
    none."""
    from archsearch.profiling.profiles import device_peak, mfu_record

    peak = device_peak(prof, threads=res.env.get("torch_threads"))
    return mfu_record(res.flops_spent, res.train_seconds, peak)


def _mfu_rows(m: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The summary's rows: the achieved rate and the MFU (``-`` without a peak)."""
    if not m or m.get("achieved_tflops") is None:
        return []
    achieved = f"{1e3 * m['achieved_tflops']:,.1f} GFLOP/s (exact FLOPs / training time)"
    if m["mfu"] is None:
        return [("achieved", achieved), ("MFU", "-")]
    return [("achieved", achieved), ("MFU", f"{100 * m['mfu']:.1f}%")]


def _report(res: Any, files: dict[str, str], *, as_json: bool) -> None:
    """Print the result (JSON or a summary table); exit 130 if interrupted, 1 if diverged."""
    if as_json:
        echo_json({**res.to_dict(), "files": files})
    else:
        _print_summary(res, files)
    if res.status == "interrupted":
        typer.echo(f"interrupted: the partial curve is in {files['result']}", err=True)
        raise typer.Exit(code=130)
    if res.status == "diverged":
        typer.echo(f"diverged: {res.reason}", err=True)
        raise typer.Exit(code=1)


def _weights_saver(path: Path | None, cfg_model: Any, *, force: bool) -> Any:
    """``--save-weights PATH``, checked before training (writable, not there unless --force):
    the ``on_done`` that saves a completed run's weights there (None without the option)."""
    if path is None:
        return None
    from archsearch.outputs import check_writable_file, refuse_file_overwrite

    check_writable_file(path, "--save-weights")
    refuse_file_overwrite(path, "--save-weights", force=force)

    def save(model: Any, res: Any) -> None:
        from archsearch.model.weights import save_weights

        if res.status == "completed":
            save_weights(model, cfg_model, path)

    return save


def _run(
    fn: Any,
    cfg_model: Any,
    task: Any,
    tcfg: Any,
    prof: Any,
    name: str,
    quiet: bool,
    done: Any = None,
) -> Any:
    from rich import progress as rp
    from rich.console import Console

    con = Console(stderr=True)
    cols = (
        rp.TextColumn("{task.description}"),
        rp.BarColumn(),
        rp.TaskProgressColumn(),
        rp.TextColumn("loss {task.fields[loss]}"),
        rp.TextColumn("{task.fields[tps]} tok/s"),
        rp.TimeElapsedColumn(),
        rp.TextColumn("ETA"),
        rp.TimeRemainingColumn(),
    )
    with rp.Progress(*cols, console=con, transient=quiet, disable=quiet) as bar:
        tid = bar.add_task(esc(f"{name} on {task.name}"), total=1.0, loss="-", tps="-")

        def on_step(step: int, progress: float, loss: float, tps: float) -> None:
            bar.update(tid, completed=progress, loss=f"{loss:.4f}", tps=f"{tps:,.0f}")

        def on_eval(p: Any) -> None:
            m = p.metrics
            bar.console.print(
                f"step {p.step:>6}  {p.tokens:>11,} tokens  held-out {task.metric} "
                f"{m[task.metric]:.4f}  loss {m['loss']:.4f}"
            )

        return fn(cfg_model, task, tcfg, prof, on_step=on_step, on_eval=on_eval, on_done=done)


def _print_summary(res: Any, files: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from archsearch.quality.report import run_title, summary_rows

    record = res.to_dict()
    t = Table(title=esc(run_title(record)))
    t.add_column("quantity")
    t.add_column("value", justify="right")
    mfu = record["env"].get("mfu")
    for quantity, value in [*summary_rows(record), *_mfu_rows(mfu)]:
        t.add_row(esc(quantity), esc(value))
    Console().print(t)
    if mfu:
        peak = mfu["peak_tflops"]
        typer.echo(f"peak: {1e3 * peak:,.1f} GFLOP/s, " if peak else "peak: ", nl=False)
        typer.echo(mfu["peak_source"])
    typer.echo(f"{res.reason}\nwrote " + ", ".join(files.values()))
