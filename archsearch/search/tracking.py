"""Experiment tracking: every finished trial of a search logged to MLflow and/or TensorBoard.

``archsearch search ... --track mlflow:PATH --track tensorboard:PATH`` adds a tracker per
destination to the search's live view (:class:`~archsearch.search.observer.StudyView`), so
trials are logged as they finish, in this process or, with ``--workers``, whenever the parent
reloads the study. Each trial is logged once, read back from the study: its parameters, its
profiled and quality metrics and objective values, its outcome and label, and its learning
curve (the task metric against training tokens) as a metric with one step per evaluation.

- ``mlflow:PATH``: a local MLflow store, the SQLite file ``PATH/mlflow.db`` (no server), one
  experiment per study, one run per trial (``trial-N``, tagged ``archsearch.trial``); browse it
  with ``mlflow ui --backend-store-uri sqlite:///PATH/mlflow.db``.
- ``tensorboard:PATH``: TensorBoard event files in ``PATH/STUDY/trial-NNNNN`` (written by
  ``torch.utils.tensorboard``), the parameters in the HPARAMS tab; ``tensorboard --logdir PATH``.

A trial already in the destination (a resumed search) is not logged again. These are optional
extras (``archsearch[mlflow]``, ``archsearch[tensorboard]``); a missing library or a malformed
value is a one-line error before any trial runs. See docs/search.md, "Storage and workers".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError
from archsearch.outputs import check_writable_dir
from archsearch.quality.tasks import get_task
from archsearch.search.observer import StudyView
from archsearch.search.results import FINISHED, TrialRecord, trial_record
from archsearch.search.study import Settings

#: tracker kind -> (the module it needs, the pip command)
KINDS = {
    "mlflow": ("mlflow", "pip install 'archsearch[mlflow]' (or: pip install mlflow-skinny)"),
    "tensorboard": (
        "tensorboard",
        "pip install 'archsearch[tensorboard]' (or: pip install tensorboard)",
    ),
}
_FORMAT = "mlflow:PATH or tensorboard:PATH (a folder; repeatable)"


@dataclass(frozen=True)
class TrackSpec:
    kind: str
    path: Path

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"


def parse_track(text: str) -> TrackSpec:
    """``mlflow:PATH`` / ``tensorboard:PATH`` -> a spec, checked: a known kind, a folder this
    user can write, the library installed. A one-line error otherwise."""
    kind, sep, path = text.partition(":")
    if not sep or kind not in KINDS or not path.strip():
        raise ConfigError("--track", text, _FORMAT)
    spec = TrackSpec(kind, Path(path).expanduser())
    check_writable_dir(spec.path, "--track")
    module, pip = KINDS[kind]
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(
            f"--track {text}", got=f"{module} is not installed", allowed=pip
        ) from None
    return spec


def parse_tracks(texts: list[str] | tuple[str, ...]) -> list[TrackSpec]:
    """Every ``--track`` value, checked (see :func:`parse_track`); each destination once."""
    return list(dict.fromkeys(parse_track(t) for t in texts))


@dataclass
class TrialLog:
    """What a tracker logs of one finished trial."""

    number: int
    status: str
    """``FINISHED`` or ``FAILED`` (diverged or failed)"""
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    curve_metric: str
    curve: list[tuple[int, float]] = field(default_factory=list)
    start_ms: int | None = None
    end_ms: int | None = None


def trial_log(t: Any, objectives: list[str], curve_metric: str) -> TrialLog:
    """The log of a finished Optuna ``FrozenTrial``."""
    r: TrialRecord = trial_record(t, objectives)
    metrics = {**r.metrics, **r.values}
    extra = {"trained_tokens": r.tokens, "train_seconds": r.train_seconds, "seconds": r.seconds}
    metrics.update({k: v for k, v in extra.items() if v is not None})
    metrics = {k: float(v) for k, v in metrics.items() if _finite(v)}
    tags = {
        "archsearch.trial": str(r.number),
        "outcome": r.outcome,
        "label": r.label,
        "family": r.family,
        "mixers": r.mixers,
        "reason": r.reason[:4000],
    }
    curve = [(int(x), float(y)) for x, y in t.user_attrs.get("curve") or [] if x > 0 and _finite(y)]
    return TrialLog(
        number=r.number,
        status="FAILED" if r.outcome in ("failed", "diverged") else "FINISHED",
        params=dict(r.params),
        metrics=metrics,
        tags=tags,
        curve_metric=curve_metric,
        curve=curve,
        start_ms=_ms(t.datetime_start),
        end_ms=_ms(t.datetime_complete),
    )


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ms(dt: Any) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


class Tracker(StudyView):
    """Logs each finished trial of the study once: those there when the study is loaded (a
    resumed search, or the trials of worker processes) and each one as it finishes."""

    def __init__(self, spec: TrackSpec, study_name: str, settings: Settings) -> None:
        self.spec = spec
        self.study_name = study_name
        self.objectives = list(settings.objectives)
        self.curve_metric = get_task(settings.task, field="task").metric
        self.study: Any = None
        self.logged: set[int] | None = None

    def load(self, study: Any) -> None:
        self.study = study
        for t in study.get_trials(deepcopy=False):
            self._maybe_log(t)

    def trial_finished(self, record: TrialRecord) -> None:
        if self.study is not None:
            self._maybe_log(self.study.get_trials(deepcopy=False)[record.number])

    def _maybe_log(self, t: Any) -> None:
        if self.logged is None:
            self.logged = self.already_logged()
        if t.number in self.logged or t.user_attrs.get("outcome") not in FINISHED:
            return
        self.log(trial_log(t, self.objectives, self.curve_metric))
        self.logged.add(t.number)

    def already_logged(self) -> set[int]:
        """The trial numbers the destination already holds."""
        return set()

    def log(self, entry: TrialLog) -> None:
        raise NotImplementedError


def mlflow_uri(path: Path) -> str:
    """The tracking URI of the MLflow store in folder ``path``: a SQLite file,
    ``PATH/mlflow.db`` (MLflow 3 refuses its older plain-folder store by default)."""
    return f"sqlite:///{(path / 'mlflow.db').resolve()}"


class MlflowTracker(Tracker):
    """One MLflow run per trial, in the experiment named after the study (a file store)."""

    def __init__(self, spec: TrackSpec, study_name: str, settings: Settings) -> None:
        super().__init__(spec, study_name, settings)
        from mlflow.tracking import MlflowClient

        spec.path.mkdir(parents=True, exist_ok=True)
        root = spec.path.resolve()
        self.client = MlflowClient(tracking_uri=mlflow_uri(spec.path))
        exp = self.client.get_experiment_by_name(study_name)
        self.experiment = (
            exp.experiment_id
            if exp
            else self.client.create_experiment(
                study_name, artifact_location=(root / "artifacts").as_uri()
            )
        )

    def already_logged(self) -> set[int]:
        runs = self.client.search_runs([self.experiment], max_results=50_000)
        return {
            int(r.data.tags["archsearch.trial"]) for r in runs if "archsearch.trial" in r.data.tags
        }

    def log(self, entry: TrialLog) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run = self.client.create_run(
            self.experiment,
            start_time=entry.start_ms,
            tags=entry.tags,
            run_name=f"trial-{entry.number}",
        )
        ts = entry.end_ms or entry.start_ms or 0
        metrics = [Metric(k, v, ts, 0) for k, v in entry.metrics.items()]
        key = f"curve/{entry.curve_metric}"
        metrics += [Metric(key, v, ts, step) for step, v in entry.curve]
        params = [Param(k, str(v)) for k, v in entry.params.items()]
        run_id = run.info.run_id
        for i in range(0, max(len(metrics), len(params), 1), 100):  # MLflow's batch limits
            self.client.log_batch(
                run_id,
                metrics=metrics[i : i + 100],
                params=params[i : i + 100],
                tags=[RunTag("archsearch.study", self.study_name)] if i == 0 else [],
            )
        self.client.set_terminated(run_id, status=entry.status, end_time=entry.end_ms)


class TensorBoardTracker(Tracker):
    """Event files per trial (``PATH/STUDY/trial-NNNNN``): the curve as a scalar over tokens,
    the parameters and final metrics as hparams."""

    def __init__(self, spec: TrackSpec, study_name: str, settings: Settings) -> None:
        super().__init__(spec, study_name, settings)
        self.root = spec.path / study_name

    def trial_dir(self, number: int) -> Path:
        return self.root / f"trial-{number:05d}"

    def already_logged(self) -> set[int]:
        if not self.root.is_dir():
            return set()
        out = set()
        for d in self.root.glob("trial-*"):
            if d.name[6:].isdigit() and any(d.glob("events.out.tfevents.*")):
                out.add(int(d.name[6:]))
        return out

    def log(self, entry: TrialLog) -> None:
        from torch.utils.tensorboard import SummaryWriter

        path = self.trial_dir(entry.number)
        with SummaryWriter(log_dir=str(path)) as w:
            for step, v in entry.curve:
                w.add_scalar(f"curve/{entry.curve_metric}", v, global_step=step)
            w.add_text("trial", _markdown(entry), global_step=0)
            hparams = {k: _hparam(v) for k, v in entry.params.items()}
            hparams.update(outcome=entry.tags["outcome"], label=entry.tags["label"])
            w.add_hparams(
                hparams, {f"final/{k}": v for k, v in entry.metrics.items()}, run_name="."
            )


def _hparam(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str)) else str(v)


def _markdown(entry: TrialLog) -> str:
    rows = [f"| {k} | {v} |" for k, v in entry.tags.items()]
    rows += [f"| param:{k} | {v} |" for k, v in entry.params.items()]
    return "| key | value |\n|---|---|\n" + "\n".join(rows)


def make_tracker(spec: TrackSpec, study_name: str, settings: Settings) -> Tracker:
    cls = MlflowTracker if spec.kind == "mlflow" else TensorBoardTracker
    return cls(spec, study_name, settings)


class Tracked(StudyView):
    """The search's live view with trackers beside it: each is told about the study and every
    finished trial. A tracker that fails (a full disk, a broken store) is reported once in the
    view and dropped; the search goes on."""

    def __init__(self, view: StudyView, trackers: list[Tracker]) -> None:
        self.view = view
        self.trackers = list(trackers)

    def __enter__(self) -> Tracked:
        self.view.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.view.__exit__(*exc)

    def trial_started(self, number: int, label: str, params: dict[str, Any]) -> None:
        self.view.trial_started(number, label, params)

    def trial_step(self, fraction: float, loss: float) -> None:
        self.view.trial_step(fraction, loss)

    def trial_note(self, text: str) -> None:
        self.view.trial_note(text)

    def note(self, text: str) -> None:
        self.view.note(text)

    def load(self, study: Any) -> None:
        self.view.load(study)
        self._each(lambda t: t.load(study))

    def trial_finished(self, record: TrialRecord) -> None:
        self.view.trial_finished(record)
        self._each(lambda t: t.trial_finished(record))

    def _each(self, call: Any) -> None:
        for t in list(self.trackers):
            try:
                call(t)
            except Exception as e:  # tracking is a copy: the study itself is saved
                self.trackers.remove(t)
                self.view.note(f"tracking to {t.spec} stopped: {type(e).__name__}: {e}")


def with_trackers(
    view: StudyView, specs: list[TrackSpec], study_name: str, settings: Settings
) -> StudyView:
    """``view`` with a tracker per spec (``view`` itself when there is none)."""
    if not specs:
        return view
    return Tracked(view, [make_tracker(s, study_name, settings) for s in specs])
