"""``archsearch search`` and ``archsearch report``: the multi-objective architecture search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from archsearch.cli import app
from archsearch.cli._common import (
    PROFILE_HELP,
    checked_profile,
    echo_json,
    invocation,
    si,
    user_errors,
)
from archsearch.cli.train import parse_optional_count, parse_task_options
from archsearch.errors import ConfigError
from archsearch.search.results import FINISHED, count_finished, outcome_counts

SAMPLER_HELP = "tpe (default, multi-objective TPE), nsga2, gp (logEHVI) or random."


@app.command("search")
@user_errors
def search_cmd(
    ctx: typer.Context,
    space: str = typer.Argument(
        ..., help="Search space: a YAML path or a shipped name (quickstart, hsm_hybrid, ...)."
    ),
    trials: int = typer.Option(
        20, "--trials", "-n", min=1, help="Finished trials the study should hold (resumes)."
    ),
    task: str | None = typer.Option(
        None, "--task", help="Quality task: lm, mqar or scifar (default: the space's)."
    ),
    task_opts: list[str] = typer.Option(
        [], "--task-opt", "-O", help="Task option KEY=VALUE (repeatable), e.g. eval_tokens=8192."
    ),
    profile: str = typer.Option("cpu", "--profile", "-p", help=PROFILE_HELP),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna storage: a database URL (sqlite:///x.db, postgresql://...) or a SQLite file "
        "path (default OUT/study.db).",
    ),
    study: str | None = typer.Option(
        None, "--study", help="Study name (default: the space's name)."
    ),
    sampler: str = typer.Option("tpe", "--sampler", help=SAMPLER_HELP),
    seed: int = typer.Option(0, "--seed", help="Sampler seed."),
    eta: int | None = typer.Option(
        None, "--eta", help="Successive halving: keep 1/eta at each rung (default 3)."
    ),
    rungs: int | None = typer.Option(
        None, "--rungs", help="Successive halving rungs, 1 = off (default 3: B/9, B/3, B)."
    ),
    budget_tokens: str | None = typer.Option(
        None, "--budget-tokens", help="Training tokens per trial (overrides the space's)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Start no new trial after this many seconds."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        "-w",
        min=1,
        help="Worker processes on this machine sharing the study "
        "(default storage then: OUT/study.journal).",
    ),
    devices: str | None = typer.Option(
        None, "--devices", help="GPU indices the workers are pinned to, round robin (0,1,2,3)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads per worker (default: cores / workers)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default runs/search/STUDY)."
    ),
    report: bool = typer.Option(
        True, "--report/--no-report", help="Write the report (OUT/report) at the end."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary, no live table."),
) -> None:
    """Multi-objective search over SPACE: sample, profile, train with successive halving; a
    live table of trials and the front; the study resumes when re-run."""
    summary = run_search(
        space,
        trials=trials,
        task=task,
        task_opts=task_opts,
        profile=profile,
        storage=storage,
        study=study,
        sampler=sampler,
        seed=seed,
        eta=eta,
        rungs=rungs,
        budget_tokens=parse_optional_count(budget_tokens, "--budget-tokens"),
        timeout=timeout,
        workers=workers,
        devices=devices,
        threads=threads,
        out=out,
        report=report,
        quiet=as_json,
        command=invocation(ctx),
    )
    if as_json:
        echo_json(summary)
    if summary["interrupted"]:
        typer.echo(
            "interrupted: finished trials are saved; run the same command again to resume",
            err=True,
        )
        raise typer.Exit(code=130)


def run_search(
    space_spec: str,
    *,
    trials: int,
    task: str | None = None,
    task_opts: list[str] | None = None,
    profile: str = "cpu",
    storage: str | None = None,
    study: str | None = None,
    sampler: str = "tpe",
    seed: int = 0,
    eta: int | None = None,
    rungs: int | None = None,
    budget_tokens: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    devices: str | None = None,
    threads: int | None = None,
    out: Path | None = None,
    report: bool = True,
    quiet: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Validate everything, then open (or resume) the study and run it; shared with quickstart."""
    from archsearch.search.space import check_buildable, load_space
    from archsearch.search.study import (
        SAMPLERS,
        TARGET,
        Search,
        is_parallel_safe,
        open_storage,
        open_study,
        settings_from,
        storage_url,
    )

    if sampler not in SAMPLERS:
        raise ConfigError("--sampler", sampler, "one of " + ", ".join(SAMPLERS))
    sp = load_space(space_spec)
    check_buildable(sp)
    prof = checked_profile(profile)
    settings = settings_from(
        sp,
        task=task,
        task_options=parse_task_options(task_opts or []),
        profile=prof,
        eta=eta,
        rungs=rungs,
        budget_tokens=budget_tokens,
    )
    name = study or sp.name
    out = out or Path("runs/search") / name
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    url = storage_url(storage or out / ("study.journal" if workers > 1 else "study.db"))
    if workers > 1 and not is_parallel_safe(url):
        raise ConfigError(
            "--storage",
            url,
            "a journal file (journal:PATH) or a database server for --workers > 1: SQLite "
            "is not safe for parallel writers",
        )
    device_list = _devices(devices)
    from archsearch.quality.tasks import make_task

    the_task = make_task(settings.task, settings.task_options, seq_len=sp.seq_len)
    st = open_study(settings, open_storage(url), name, sampler=sampler, seed=seed, n_trials=trials)
    st.set_user_attr(TARGET, trials)
    live = LiveView(name, trials, settings, quiet=quiet)
    if workers > 1:
        result = _run_workers(
            st, url, name, trials, workers, device_list, threads, sampler, seed, out, live
        )
    else:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        search = Search(st, settings, observer=live, task=the_task)
        recovered = search.recover()
        with live:
            live.load(st)
            if recovered:
                live.note(f"trials {recovered} were left running by a dead process: queued again")
            summary = search.run(trials, timeout=timeout)
        result = {
            "study": name,
            "storage": url,
            "finished": summary.finished,
            "ran": summary.ran,
            "interrupted": summary.interrupted,
            "timed_out": summary.stopped_by_timeout,
            "outcomes": summary.outcomes,
        }

    if report:
        from archsearch.search.report import write_report

        out.mkdir(parents=True, exist_ok=True)
        rep = write_report(st, out / "report", command=command)
        result["report"] = rep
        if not quiet:
            typer.echo(f"report: {rep['files']['report']} ({len(rep['front'])} on the front)")
    return result


def _devices(text: str | None) -> list[str]:
    if not text:
        return []
    out = [d.strip() for d in text.split(",") if d.strip()]
    if not out or not all(d.isdigit() for d in out):
        raise ConfigError("--devices", text, "comma-separated GPU indices, e.g. 0,1,2,3")
    return out


def _run_workers(
    st: Any,
    url: str,
    name: str,
    trials: int,
    workers: int,
    devices: list[str],
    threads: int | None,
    sampler: str,
    seed: int,
    out: Path,
    live: LiveView,
) -> dict[str, Any]:
    """Start ``workers`` ``archsearch worker`` processes on the study, each pinned to a device
    (round robin) with its share of the CPU threads; show the study live until they end. A
    Ctrl-C is passed on to them: each marks its running trial interrupted."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(workers):
        cmd = [sys.executable, "-m", "archsearch", "worker", "--storage", url, "--study", name]
        cmd += ["--trials", str(trials), "--threads", str(threads), "--json"]
        cmd += ["--sampler", sampler, "--seed", str(seed + 1000 * i + len(st.trials))]
        env = dict(os.environ)
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
        log = (out / f"worker-{i}.log").open("w")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
    interrupted = False
    with live:
        try:
            while any(p.poll() is None for p in procs):
                live.load(st)
                with contextlib.suppress(subprocess.TimeoutExpired):  # wakes up on an exit
                    next(p for p in procs if p.poll() is None).wait(timeout=1.0)
        except KeyboardInterrupt:
            interrupted = True
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait()
        live.load(st)
    codes = [p.returncode for p in procs]
    trials = st.get_trials(deepcopy=False)
    return {
        "study": name,
        "storage": url,
        "finished": count_finished(trials),
        "ran": None,
        "workers": workers,
        "threads_per_worker": threads,
        "worker_exit_codes": codes,
        "interrupted": interrupted or any(c == 130 for c in codes),
        "timed_out": False,
        "outcomes": outcome_counts(trials),
    }


class LiveView:  # an archsearch.search.study.Observer (study imports torch: not at the top)
    """The live rich display: the running trial's progress, the last trials, the current front."""

    def __init__(self, name: str, n_trials: int, settings: Any, *, quiet: bool) -> None:
        self.name, self.n_trials, self.quiet = name, n_trials, quiet
        self.objectives = settings.objectives
        self.directions = settings.directions
        self.records: list[Any] = []
        self.notes: list[str] = []
        self._live: Any = None
        self._bar: Any = None
        self._task_id: Any = None
        self.current = ""

    def __enter__(self) -> LiveView:
        if self.quiet:
            return self
        from rich import progress as rp
        from rich.console import Console
        from rich.live import Live

        con = Console(stderr=True)
        self._bar = rp.Progress(
            rp.TextColumn("{task.description}"),
            rp.BarColumn(),
            rp.TaskProgressColumn(),
            rp.TextColumn("loss {task.fields[loss]}"),
            rp.TimeElapsedColumn(),
            console=con,
        )
        self._task_id = self._bar.add_task("waiting", total=1.0, loss="-")
        self._live = Live(self._render(), console=con, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._render(final=True))
            self._live.__exit__(*exc)
            if not self._live.console.is_terminal:
                self._live.console.line()

    def load(self, study: Any) -> None:
        from archsearch.search.results import trial_record

        self.records = [
            trial_record(t, self.objectives)
            for t in study.get_trials(deepcopy=False)
            if t.state.name not in ("RUNNING", "WAITING")
        ]
        self._refresh()

    def note(self, text: str) -> None:
        self.notes = [*self.notes[-3:], text]
        self._refresh()

    # Observer
    def trial_started(self, number: int, label: str, params: dict[str, Any]) -> None:
        self.current = f"trial {number} ({label})"
        if self._bar is not None:
            self._bar.reset(self._task_id, total=1.0, description=self.current, loss="-")
        self._refresh()

    def trial_step(self, fraction: float, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task_id, completed=fraction, loss=f"{loss:.4f}")

    def trial_note(self, text: str) -> None:
        self.note(f"{self.current}: {text}")

    def trial_finished(self, record: Any) -> None:
        self.records.append(record)
        self.current = ""
        if self._bar is not None:
            self._bar.reset(self._task_id, total=1.0, description="next trial", loss="-")
        self._refresh()

    # rendering
    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _front(self) -> list[Any]:
        from archsearch.search.results import feasible_front

        front = feasible_front(self.records, self.objectives, self.directions)
        return sorted(front, key=lambda r: r.number)

    def _render(self, final: bool = False) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        done = sum(r.outcome in FINISHED for r in self.records)
        front = self._front()
        on_front = {r.number for r in front}
        t = Table(
            title=f"study {self.name}: {done}/{self.n_trials} trials finished, "
            f"{len(front)} on the front",
            title_justify="left",
        )
        for col in ("#", "family", "outcome", *self.objectives, "params", "s", "reason"):
            left = col in ("family", "outcome", "reason")
            width = {"#": 3, "family": 7, "outcome": 8}.get(col, len(col))
            width = {"min_width": width} if col != "reason" else {"max_width": 30}
            t.add_column(col, justify="left" if left else "right", no_wrap=True, **width)
        for r in self.records[-12:]:
            style = "bold green" if r.number in on_front else None
            vals = [_fmt(r.values.get(m)) for m in self.objectives]
            t.add_row(
                str(r.number),
                r.label,
                r.outcome,
                *vals,
                _fmt(r.metrics.get("params")),
                "-" if r.seconds is None else f"{r.seconds:.1f}",
                "" if r.outcome == "complete" else r.reason,
                style=style,
            )
        parts: list[Any] = [t]
        if front:
            f = Table(title="current Pareto front (feasible, full budget)", title_justify="left")
            for col in ("#", "family", *self.objectives):
                f.add_column(col, justify="left" if col == "family" else "right")
            for r in front:
                f.add_row(str(r.number), r.label, *[_fmt(r.values[m]) for m in self.objectives])
            parts.append(f)
        for n in self.notes:
            parts.append(Text(n, style="dim"))
        if not final and self._bar is not None:
            parts.append(self._bar)
        return Group(*parts)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 1000:
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    if isinstance(v, (int, float)):
        return si(v)
    return str(v)


@app.command("report")
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
