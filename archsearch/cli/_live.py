"""The live view of a running search: the running trial's progress, the last trials and the
current Pareto front, drawn with rich on stderr (nothing when quiet). Not a command."""

from __future__ import annotations

from typing import Any

import typer

from archsearch.cli._common import esc
from archsearch.cli._tables import fit_table
from archsearch.metrics import get_metric, is_metric
from archsearch.search.observer import StudyView
from archsearch.search.results import FINISHED, feasible_front, trial_record


class LiveView(StudyView):
    """The live rich display: the running trial's progress, the last trials, the current front."""

    def __init__(self, name: str, n_trials: int, settings: Any, *, quiet: bool) -> None:
        self.name, self.n_trials, self.quiet = name, n_trials, quiet
        self.objectives = settings.objectives
        self.directions = settings.directions
        self.records: list[Any] = []
        self.notes: list[str] = []
        self._live: Any = None
        self._console: Any = None
        self._bar: Any = None
        self._task_id: Any = None
        self.current = ""

    def __enter__(self) -> LiveView:
        if self.quiet:
            return self
        from rich import progress as rp
        from rich.console import Console
        from rich.live import Live

        con = self._console = Console(stderr=True)
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
            self._bar.reset(self._task_id, total=1.0, description=esc(self.current), loss="-")
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
        front = feasible_front(self.records, self.objectives, self.directions)
        return sorted(front, key=lambda r: r.number)

    def _fit(self, table: Any, drop: tuple[str, ...]) -> Any:
        return table if self._console is None else fit_table(table, self._console, drop=drop)

    def _render(self, final: bool = False) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        done = sum(r.outcome in FINISHED for r in self.records)
        front = self._front()
        on_front = {r.number for r in front}
        t = Table(
            title=f"study {esc(self.name)}: {done}/{self.n_trials} trials finished, "
            f"{len(front)} on the front",
            title_justify="left",
        )
        left = ("family", "mixers", "outcome", "reason")
        for col in ("#", "family", "mixers", "outcome", *self.objectives, "params", "s", "reason"):
            # values stay whole; only the reason wraps, between words
            t.add_column(col, justify="left" if col in left else "right", no_wrap=col != "reason")
        for r in self.records[-12:]:
            style = "bold green" if r.number in on_front else None
            vals = [_fmt(m, r.values.get(m)) for m in self.objectives]
            t.add_row(
                str(r.number),
                esc(r.family),
                esc(r.mixers),
                esc(r.outcome),
                *vals,
                _fmt("params", r.metrics.get("params")),
                "-" if r.seconds is None else f"{r.seconds:.1f}",
                "" if r.outcome == "complete" else esc(_short(r.reason)),
                style=style,
            )
        parts: list[Any] = [self._fit(t, drop=("reason", "s", "params", "mixers"))]
        if front:
            f = Table(title="current Pareto front (feasible, full budget)", title_justify="left")
            for col in ("#", "family", "mixers", *self.objectives):
                f.add_column(col, justify="left" if col in left else "right", no_wrap=True)
            for r in front:
                f.add_row(
                    str(r.number),
                    esc(r.family),
                    esc(r.mixers),
                    *[_fmt(m, r.values[m]) for m in self.objectives],
                )
            parts.append(self._fit(f, drop=("mixers",)))
        for n in self.notes:
            parts.append(Text(n, style="dim"))
        if not final and self._bar is not None:
            parts.append(self._bar)
        return Group(*parts)


class PlainView(StudyView):
    """The search's progress as plain lines on stderr, flushed as they happen: what a log file,
    CI or a batch job gets (a live display on a non-terminal shows up only at the end). One line
    per trial start, per quarter of its budget, per note (a rung decision, a failure) and per
    end, and one for the study at the start and the end."""

    def __init__(self, name: str, n_trials: int, settings: Any) -> None:
        self.name, self.n_trials = name, n_trials
        self.objectives = settings.objectives
        self.directions = settings.directions
        self.records: list[Any] = []
        self.current = ""
        self._quarter = 0

    def _say(self, text: str) -> None:
        typer.echo(text, err=True)

    def __enter__(self) -> PlainView:
        objectives = ", ".join(self.objectives)
        self._say(f"study {self.name}: {self.n_trials} trials, objectives {objectives}")
        return self

    def __exit__(self, *exc: Any) -> None:
        done = sum(r.outcome in FINISHED for r in self.records)
        front = feasible_front(self.records, self.objectives, self.directions)
        self._say(
            f"study {self.name}: {done}/{self.n_trials} trials finished, {len(front)} on the front"
        )

    def load(self, study: Any) -> None:
        before = len(self.records)
        self.records = [
            trial_record(t, self.objectives)
            for t in study.get_trials(deepcopy=False)
            if t.state.name not in ("RUNNING", "WAITING")
        ]
        if before == 0 and self.records:
            self._say(f"study {self.name}: {len(self.records)} trials already finished")

    def note(self, text: str) -> None:
        self._say(text)

    def trial_started(self, number: int, label: str, params: dict[str, Any]) -> None:
        self.current, self._quarter = f"trial {number} ({label})", 0
        self._say(f"{self.current} started")

    def trial_step(self, fraction: float, loss: float) -> None:
        quarter = min(int(fraction * 4), 3)
        if quarter > self._quarter:
            self._quarter = quarter
            self._say(f"{self.current}: {25 * quarter}% of the budget, loss {loss:.4f}")

    def trial_note(self, text: str) -> None:
        self._say(f"{self.current}: {text}")

    def trial_eval(self, fraction: float, metric: str, value: float | None) -> None:
        shown = "-" if value is None else _fmt(metric, value)
        at = f"{100 * fraction:.0f}% of the budget"
        self._say(f"{self.current}: held-out {metric} {shown} at {at}")

    def trial_finished(self, record: Any) -> None:
        self.records.append(record)
        vals = ", ".join(f"{m} {_fmt(m, record.values.get(m))}" for m in self.objectives)
        secs = "" if record.seconds is None else f" ({record.seconds:.1f} s)"
        why = "" if record.outcome == "complete" or not record.reason else f": {record.reason}"
        model = f"{record.family}, {record.mixers}"
        self._say(f"trial {record.number} ({model}) {record.outcome}{why}; {vals}{secs}")
        self.current = ""


def study_view(name: str, n_trials: int, settings: Any, *, quiet: bool) -> StudyView:
    """The live display when stderr is a terminal, plain lines when it is not (a log file, a
    pipe, CI); nothing with ``quiet`` (``--json``)."""
    import sys

    if not quiet and not sys.stderr.isatty():
        return PlainView(name, n_trials, settings)
    return LiveView(name, n_trials, settings, quiet=quiet)


def _short(reason: str, most: int = 60) -> str:
    """A reason cut to ``most`` characters at a word (the live table's last column)."""
    if len(reason) <= most:
        return reason
    return reason[:most].rsplit(" ", 1)[0] + " …"


def _fmt(metric: str, v: Any) -> str:
    """A table cell as the metric's registry entry formats it."""
    return get_metric(metric).format(v) if is_metric(metric) else str(v)


def echo_report_line(rep: dict[str, Any]) -> None:
    """Where a search's report went, in one line on stdout."""
    typer.echo(f"report: {rep['files']['report']} ({len(rep['front'])} on the front)")
