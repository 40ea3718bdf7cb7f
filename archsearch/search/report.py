"""``archsearch report``: a study's results as files people open.

Written to the output folder:

- ``trials.csv``: one row per trial (outcome, label, model family, mixers, objectives, every
  metric, constraints, rung reached, parameters, reason); a quality metric's column names the
  fidelity it was measured at (``bits_per_byte@full`` for a trial trained on the full budget,
  ``bits_per_byte@rung0`` for one stopped at rung 0), a profiled one is the metric's name;
- ``pareto.png``: the objectives of every trained trial, one colour and marker per family
  (label), costs on log axes in their units, the feasible Pareto front ringed, numbered and
  drawn as a staircase; infeasible trials as grey crosses; trials stopped by successive halving
  as hollow markers at their last rung's value. Three objectives: a 3-D plot, and
  ``pareto_pairs.png`` with the 2-D projections (quality on y, costs on x); the figures are
  drawn by :mod:`archsearch.search.plots`;
- ``hypervolume.png``: the hypervolume of the feasible front after each trial, in normalised
  objective space (each objective mapped so that the best value seen is 0 and the reference
  point, the worst value seen pushed out by 10 % of its range, is 1);
- ``curves.png``: the learning curve of every trained trial (quality against tokens), showing
  where successive halving stopped each one;
- ``importances.csv`` and ``importances.png``: Optuna's parameter importances (PED-ANOVA, its
  default) for each objective, from the complete trials;
- ``families.csv``: per label (model family and mixers), how many trials, outcomes, the best
  quality and the lowest cost;
- ``pareto/*.yaml``: the Pareto-optimal models, as model files ``archsearch build/profile/train``
  take as they are;
- ``report.md``: all of the above tied together, with the command that made it;
- ``seeds.csv`` (after ``search --front-seeds K``): the front models' runs over extra seeds; the
  report gives each front point's mean and 95% interval and whether it is distinguishable from
  its neighbours along the front.

Every figure title and table heading says what the trials were given equally: "at equal
compute (B FLOP per trial)" or "at equal tokens (N tokens per trial)" (:func:`budget_title`).

A report is a function of its saved files. :func:`write_report` saves what it needs from the
study (``trials.csv``, ``curves.csv``, ``fidelity.csv``, ``study.json`` with the study's settings,
``importances.csv`` and ``pareto/*.yaml``), then :func:`draw_report` draws the figures,
``families.csv`` and ``report.md`` from those files alone; ``archsearch report DIR`` on a report
folder (one without a study database) draws them again. Axis scales, units, labels and the
profiled/quality split come from :mod:`archsearch.metrics` (docs/search.md, "Reports").
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch import fmt
from archsearch.metrics import Metric, get_metric, is_metric
from archsearch.model.config import dump_model_config, model_config_from_dict
from archsearch.profiling.report import read_rows, write_rows
from archsearch.search import plots
from archsearch.search.fidelity import agreement_section, judged_metric, rung_agreement
from archsearch.search.front_seeds import ATTR as FRONT_SEEDS
from archsearch.search.front_seeds import seed_rows
from archsearch.search.pipeline import WEIGHTS_ATTR, trial_weights
from archsearch.search.results import (
    TrialRecord,
    budget_label,
    feasible_front,
    hypervolume_history,
    reference_point,
    split_column,
    to_min,
    trial_columns,
    trial_record,
)
from archsearch.search.stats import distinguishable, summarise
from archsearch.search.storage import redact
from archsearch.search.study import load_settings

if TYPE_CHECKING:
    import optuna

#: the files :func:`write_report` saves and :func:`draw_report` reads
SAVED = (
    "trials.csv",
    "curves.csv",
    "fidelity.csv",
    "study.json",
    "importances.csv",
    "pareto",
    "seeds.csv",
)
#: trials.csv columns that are not a metric (besides ``constraint:*`` and ``param:*``)
_NOT_METRICS = frozenset(
    {
        "number",
        "state",
        "outcome",
        "label",
        "family",
        "mixers",
        "feasible",
        "rung",
        "trained_tokens",
        "train_seconds",
        "seconds",
        "duplicate_of",
        "reason",
    }
)


def _metric(name: str) -> Metric | None:
    return get_metric(name) if is_metric(name) else None


def is_profiled(name: str) -> bool:
    """A profiled metric (cost, memory, latency): known before training."""
    m = _metric(name)
    return m is not None and m.kind == "profiled"


def format_value(name: str, v: Any) -> str:
    """A value of the metric ``name`` as a person reads it (``fmt.value`` if unregistered)."""
    m = _metric(name)
    if m is None or isinstance(v, bool):
        return fmt.value(v)
    return m.format(v)


class StudyData:
    """The records of one study and what they are measured against (no storage needed)."""

    def __init__(
        self,
        name: str,
        settings: dict[str, Any],
        records: list[TrialRecord],
        curves: dict[int, list[tuple[float, float | None]]] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.objectives: list[str] = [o["metric"] for o in settings["objectives"]]
        self.directions: list[str] = [o["direction"] for o in settings["objectives"]]
        self.records = records
        self.curves = curves or {}
        self.seeds: list[dict[str, Any]] = []
        """the rows of seeds.csv (front models over extra seeds), when saved"""

    @classmethod
    def of_study(cls, study: optuna.Study) -> StudyData:
        settings = load_settings(study)
        objectives = [o["metric"] for o in settings["objectives"]]
        trials = study.get_trials(deepcopy=False)
        curves = {t.number: [tuple(p) for p in t.user_attrs.get("curve") or []] for t in trials}
        records = [trial_record(t, objectives) for t in trials]
        return cls(study.study_name, settings, records, curves)  # type: ignore[arg-type]

    def complete(self, *, feasible: bool | None = None) -> list[TrialRecord]:
        out = [r for r in self.records if r.outcome == "complete" and r.values]
        if feasible is not None:
            out = [r for r in out if r.feasible == feasible]
        return out

    def front(self) -> list[TrialRecord]:
        """Feasible, complete, non-dominated trials, best first in the first objective."""
        front = feasible_front(self.records, self.objectives, self.directions)
        return sorted(front, key=lambda r: self.min_vector(r))

    def min_vector(self, r: TrialRecord) -> list[float]:
        return to_min([r.values[m] for m in self.objectives], self.directions)

    def normalisation(self) -> tuple[list[float], list[float]] | None:
        """(ideal, reference) of the feasible complete trials, minimisation space."""
        return shared_normalisation([self])

    def hypervolume_history(
        self, norm: tuple[Sequence[float], Sequence[float]] | None = None
    ) -> list[float]:
        """Normalised hypervolume after each trial (trial order)."""
        norm = norm or self.normalisation()
        if norm is None:
            return [0.0] * len(self.records)
        pts: list[Sequence[float] | None] = []
        for r in self.records:
            ok = r.outcome == "complete" and r.values and r.feasible
            pts.append(normalise(self.min_vector(r), *norm) if ok else None)
        return hypervolume_history(pts, [1.0] * len(self.objectives))


def shared_normalisation(
    studies: Sequence[StudyData],
) -> tuple[list[float], list[float]] | None:
    """(ideal, reference) over the feasible complete trials of every study in ``studies``
    (minimisation space; they must share their objectives): the best value seen in any study
    maps to 0, the worst pushed out by 10 % of the range (:func:`reference_point`) to 1, so
    hypervolumes computed with it compare across the studies. None when no trial finished."""
    pts = [d.min_vector(r) for d in studies for r in d.complete(feasible=True)]
    if not pts:
        return None
    return [min(c) for c in zip(*pts, strict=True)], reference_point(pts)


def normalise(v: Sequence[float], ideal: Sequence[float], ref: Sequence[float]) -> list[float]:
    return [
        (x - lo) / (hi - lo) if hi > lo else 0.0 for x, lo, hi in zip(v, ideal, ref, strict=True)
    ]


# ---------------------------------------------------------------------------------------------


def write_report(study: optuna.Study, out: Path, *, command: str = "") -> dict[str, Any]:
    """Save ``study``'s records into ``out`` and draw every report file from them; returns what
    was written."""
    out.mkdir(parents=True, exist_ok=True)
    save_records(StudyData.of_study(study), study, out, command=command)
    return draw_report(out)


# ---------------------------------------------------------------------------------------------
# saving: the study's records as files


def save_records(data: StudyData, study: optuna.Study, out: Path, *, command: str = "") -> None:
    """The files a report is drawn from: trials.csv, curves.csv, fidelity.csv, study.json,
    importances.csv (Optuna needs the study for them) and the Pareto-optimal models."""
    rows = [r.row(data.objectives) for r in data.records]
    _write_table(rows, out / "trials.csv", trial_columns(rows, data.objectives))
    curves = [
        {"number": n, "tokens": x, "value": y} for n, pts in data.curves.items() for x, y in pts
    ]
    _write_table(curves, out / "curves.csv", ["number", "tokens", "value"])
    fidelity = [{"number": r.number, **f} for r in data.records for f in r.fidelity]
    _write_table(fidelity, out / "fidelity.csv")
    importances, why_not = _importances(data, study)
    params = sorted({p for d in importances.values() for p in d})
    rows = [{"param": p, **{m: d.get(p) for m, d in importances.items()}} for p in params]
    imp_file = out / "importances.csv"
    if importances:
        _write_table(rows, imp_file)
    elif imp_file.exists():
        imp_file.unlink()
    record = {
        "study": data.name,
        "command": redact(command),  # a storage URL's password is never written
        "importances_not_computed": why_not,
        "settings": data.settings,
    }
    (out / "study.json").write_text(json.dumps(record, indent=2, default=str))
    weights = study.user_attrs.get(WEIGHTS_ATTR)
    _export_front(data.front(), out / "pareto", Path(weights) if weights else None)
    save_seeds(data, study, out)


def _raw_cell(col: str, v: Any) -> Any:
    return "" if v is None else v


def _write_table(rows: list[dict[str, Any]], path: Path, cols: list[str] | None = None) -> Path:
    """A CSV table as the csv module writes it (every value's ``str``, CRLF line ends)."""
    cols = cols if cols is not None else list(dict.fromkeys(k for row in rows for k in row))
    write_rows(rows, path, cols or ["empty"], cell=_raw_cell, lineterminator="\r\n")
    return path


def pareto_file(r: TrialRecord) -> str:
    """The file name of a Pareto-optimal trial's model under ``pareto/``."""
    return f"trial-{r.number:04d}-{r.label.replace('/', '-').replace('+', '-')}.yaml"


def _export_front(front: list[TrialRecord], folder: Path, weights: Path | None = None) -> list[str]:
    """The front's model files under ``folder``; with ``weights`` (the study's weights folder,
    ``search --save-weights``), each one's trained weights next to it (``NAME.safetensors``;
    a duplicate trial's are those of the trial it repeats)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("trial-*.yaml"), *folder.glob("trial-*.safetensors")]:
        old.unlink()
    files = []
    for r in front:
        cfg = model_config_from_dict(r.model)
        path = folder / pareto_file(r)
        head = (
            f"# Pareto-optimal trial {r.number} ({r.label}): "
            + ", ".join(f"{k} = {format_value(k, v)}" for k, v in r.values.items())
            + "\n"
        )
        path.write_text(head + dump_model_config(cfg))
        files.append(str(path))
        if weights is not None:
            trained = trial_weights(weights, r.number)
            if not trained.is_file() and r.duplicate_of is not None:
                trained = trial_weights(weights, int(r.duplicate_of))
            if trained.is_file():
                shutil.copy2(trained, path.with_suffix(".safetensors"))
    return files


def _importances(data: StudyData, study: optuna.Study) -> tuple[dict[str, dict[str, float]], str]:
    import optuna

    done = data.complete()
    if len(done) < 3:
        return {}, f"needs at least 3 complete trials (the study has {len(done)})"
    out: dict[str, dict[str, float]] = {}
    why = ""
    for i, (m, d) in enumerate(zip(data.objectives, data.directions, strict=True)):
        sign = 1.0 if d == "minimize" else -1.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(
                    study, target=lambda t, i=i, sign=sign: sign * t.values[i]
                )
        except Exception as e:  # too few distinct values, one-valued parameters, ...
            why = f"{m}: {type(e).__name__}: {e}"
            continue
        out[m] = {k: float(v) for k, v in imp.items()}
    return out, why


# ---------------------------------------------------------------------------------------------
# reading the saved files back


def is_saved_report(folder: Path) -> bool:
    """A folder :func:`draw_report` can draw from (what :func:`save_records` writes)."""
    return (folder / "trials.csv").is_file() and (folder / "study.json").is_file()


def _record(row: dict[str, Any], objectives: list[str], fidelity: list[dict[str, Any]]) -> Any:
    # a quality metric's column names the fidelity it was measured at (bits_per_byte@rung0);
    # a trial has each metric at one fidelity only
    metrics = {
        split_column(k)[0]: v
        for k, v in row.items()
        if k not in _NOT_METRICS and not k.startswith(("constraint:", "param:"))
    }
    values = {}
    if row.get("state") == "COMPLETE" and all(m in metrics for m in objectives):
        values = {m: float(metrics[m]) for m in objectives}
    return TrialRecord(
        number=int(row["number"]),
        state=str(row.get("state", "")),
        outcome=str(row.get("outcome", "")),
        reason=str(row.get("reason", "")),
        label=str(row.get("label", "?")),
        params={k.removeprefix("param:"): v for k, v in row.items() if k.startswith("param:")},
        values=values,
        metrics=metrics,
        constraints={
            k.removeprefix("constraint:"): float(v)
            for k, v in row.items()
            if k.startswith("constraint:")
        },
        fidelity=fidelity,
        tokens=row.get("trained_tokens"),
        train_seconds=row.get("train_seconds"),
        seconds=row.get("seconds"),
        duplicate_of=row.get("duplicate_of"),
        family=str(row.get("family", "?")),
        mixers=str(row.get("mixers", "?")),
    )


def load_saved(folder: Path) -> tuple[StudyData, dict[str, Any]]:
    """The study data saved in a report folder, and ``study.json``."""
    saved = json.loads((folder / "study.json").read_text())
    objectives = [o["metric"] for o in saved["settings"]["objectives"]]
    fidelity: dict[int, list[dict[str, Any]]] = {}
    if (folder / "fidelity.csv").is_file():
        for f in read_rows(folder / "fidelity.csv"):
            fidelity.setdefault(int(f.pop("number")), []).append(f)
    curves: dict[int, list[tuple[float, float | None]]] = {}
    if (folder / "curves.csv").is_file():
        for c in read_rows(folder / "curves.csv"):
            curves.setdefault(int(c["number"]), []).append((c["tokens"], c.get("value")))
    records = [
        _record(row, objectives, fidelity.get(int(row["number"]), []))
        for row in read_rows(folder / "trials.csv")
    ]
    data = StudyData(saved["study"], saved["settings"], records, curves)
    if (folder / "seeds.csv").is_file():
        data.seeds = read_rows(folder / "seeds.csv")
    return data, saved


def _read_importances(folder: Path) -> dict[str, dict[str, float]]:
    path = folder / "importances.csv"
    if not path.is_file():
        return {}
    out: dict[str, dict[str, float]] = {}
    for row in read_rows(path):
        param = str(row.pop("param"))
        for m, v in row.items():
            out.setdefault(m, {})[param] = float(v)
    return out


def copy_saved(src: Path, out: Path) -> None:
    """The saved files of the report in ``src``, copied into ``out`` to draw it there."""
    out.mkdir(parents=True, exist_ok=True)
    for name in SAVED:
        if (src / name).is_dir():
            shutil.copytree(src / name, out / name, dirs_exist_ok=True)
        elif (src / name).is_file():
            shutil.copy2(src / name, out / name)


# ---------------------------------------------------------------------------------------------
# drawing: figures, families.csv and report.md from the saved files


def draw_report(out: Path) -> dict[str, Any]:
    """Every figure, ``families.csv`` and ``report.md`` of the report saved in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    data, saved = load_saved(out)
    files: dict[str, str] = {"trials": str(out / "trials.csv")}
    front = data.front()
    files.update(plots.plot_pareto(data, front, out, budget_title(data)))
    hv = data.hypervolume_history()
    if data.complete(feasible=True):
        warn = plots.hv_warning(data, front)
        plots.plot_hv(hv, out / "hypervolume.png", budget_title(data), warn)
        files["hypervolume"] = str(out / "hypervolume.png")
    if any(r.fidelity for r in data.records):
        plots.plot_curves(data, out / "curves.png", budget_title(data))
        files["curves"] = str(out / "curves.png")
    importances = _read_importances(out)
    if importances:
        warn = plots.importances_warning(data)
        plots.plot_importances(importances, out / "importances.png", budget_title(data), warn)
        files["importances"] = str(out / "importances.png")
    families = _families(data, front)
    files["families"] = str(_write_table(families, out / "families.csv"))
    exported = [str(out / "pareto" / pareto_file(r)) for r in front]
    why_not = str(saved.get("importances_not_computed", ""))
    md = _markdown(data, front, hv, (importances, why_not), families, exported, saved["command"])
    (out / "report.md").write_text(md)
    files["report"] = str(out / "report.md")
    return {
        "study": data.name,
        "out": str(out),
        "files": files,
        "front": [
            {
                "number": r.number,
                "label": r.label,
                "family": r.family,
                "mixers": r.mixers,
                **r.values,
                "model": f,
            }
            for r, f in zip(front, exported, strict=True)
        ],
        "hypervolume": hv[-1] if hv else 0.0,
        "trials": len(data.records),
        "rank_fidelity": [a.to_dict() for a in rung_agreement(data.records)],
    }


def _families(data: StudyData, front: list[TrialRecord]) -> list[dict[str, Any]]:
    on_front = {r.number for r in front}
    rows = []
    for label in sorted({r.label for r in data.records}):
        rs = [r for r in data.records if r.label == label]
        row: dict[str, Any] = {
            "family": rs[0].family,
            "mixers": "+".join(sorted({n for r in rs for n in mixer_names(r.mixers)})) or "?",
            "trials": len(rs),
        }
        for o in ("complete", "stopped", "infeasible", "invalid", "diverged", "failed"):
            row[o] = sum(r.outcome == o for r in rs)
        row["on_front"] = sum(r.number in on_front for r in rs)
        done = [r for r in rs if r.outcome == "complete" and r.feasible and r.values]
        for m, d in zip(data.objectives, data.directions, strict=True):
            vals = [r.values[m] for r in done]
            row[f"best_{m}"] = (min(vals) if d == "minimize" else max(vals)) if vals else None
        rows.append(row)
    return rows


def mixer_names(mixers: str) -> list[str]:
    """``hsm×3+softmax×1`` -> ``['hsm', 'softmax']``: the names without the layer counts."""
    return [m.rpartition("×")[0] or m for m in mixers.split("+") if m and m != "?"]


def _budget(train: dict[str, Any]) -> str:
    """What every trial was given, in words: 'equal compute: every trial spent 600 GFLOP of
    training (6e+11 FLOP)' or 'equal tokens: every trial trained on 3.07 k tokens'."""
    if train.get("budget_flops"):
        flops = float(train["budget_flops"])
        return (
            f"equal compute: every trial spent {fmt.si(flops, 'FLOP')} of training "
            f"({flops:.3g} FLOP), so a cheaper model saw more tokens"
        )
    if train.get("budget_tokens"):
        tokens = fmt.count(int(train["budget_tokens"]), "tokens")
        return f"equal tokens: every trial trained on {tokens} (a costlier model spent more FLOPs)"
    if train.get("budget_steps"):
        return f"equal steps: every trial took {int(train['budget_steps']):,} optimizer steps"
    if train.get("budget_seconds"):
        return f"equal time: every trial trained for {float(train['budget_seconds']):g} s"
    return "budget unknown"


def _better(direction: str) -> str:
    return "lower is better" if direction == "minimize" else "higher is better"


def _options(options: dict[str, Any] | None) -> str:
    """Task options as ``key=value`` (or 'defaults')."""
    if not options:
        return "default options"
    return ", ".join(f"`{k}={v}`" for k, v in options.items())


def _how_to_read(data: StudyData) -> list[str]:
    """A paragraph on what the front, the directions, stopped trials and the hypervolume mean."""
    dirs = "; ".join(
        f"{m}: {_better(d)}" for m, d in zip(data.objectives, data.directions, strict=True)
    )
    shape = "area" if len(data.objectives) == 2 else "volume"
    return [
        "## How to read this",
        "",
        "Each trial is one model sampled from the space, profiled, then trained and measured "
        f"with the same recipe ({dirs}). The **Pareto front** is the set of feasible models "
        "that trained on the full budget and that no other such model beats on every objective "
        "at once: along it, improving one objective costs another, and every model off it is "
        "beaten by one on it. A trial **stopped** by successive halving ranked poorly on part "
        "of the budget and was not trained further, so it has no final value (the plots show "
        "its value at its last rung); an **infeasible** trial broke a constraint and was not "
        "trained. The **hypervolume** is the "
        f"{shape} of objective space the front dominates, after mapping each objective so "
        "that the best value any feasible trial reached is 0 and the worst, pushed out by "
        "10 % of its range, is 1: it lies between 0 and 1, higher is better, and it compares "
        "only within this report (`archsearch report A B` puts two studies on one scale).",
        "",
    ]


def _summary(data: StudyData, hv: list[float], command: str) -> list[str]:
    """The search's settings and outcome counts, and the command that made the report."""
    s = data.settings
    counts: dict[str, int] = {}
    for r in data.records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    objs = ", ".join(
        f"{m} ({_better(d)})" for m, d in zip(data.objectives, data.directions, strict=True)
    )
    cons = ", ".join(
        f"{c['metric']} {op} {format_value(c['metric'], c[key])}"
        for c in s.get("constraints", [])
        for key, op in (("max", "≤"), ("min", "≥"))
        if c.get(key) is not None
    )
    train = s.get("train", {})
    hvg = s.get("halving", {})
    rungs = int(hvg.get("rungs") or 1)
    halving = (
        f"successive halving: eta = {hvg.get('eta')}, {rungs} rungs (a stopped trial spent "
        "only its rungs' share of the budget)"
        if rungs > 1
        else "successive halving: off (every trial got the full budget)"
    )
    task = s.get("task", {})
    prof = s.get("profile", {})
    md = [
        f"# Search report: {data.name}",
        "",
        *_how_to_read(data),
        "## Settings",
        "",
        f"- space: `{s.get('space_source', '?')}` (`{s.get('space_name', '?')}`), window "
        f"T = {s.get('space', {}).get('seq_len', '?')} tokens",
        f"- task: {task.get('name', '?')} ({_options(task.get('options'))})",
        f"- hardware profile: {prof.get('name')} ({prof.get('device')}, {prof.get('dtype')})",
        f"- objectives: {objs}" + (f"; constraints: {cons}" if cons else ""),
        f"- training, {_budget(train)}; batch {train.get('batch_size')}, lr {train.get('lr')}",
        f"- {halving}",
        f"- trials: {len(data.records)} ("
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + ")",
        f"- hypervolume of the feasible front (normalised, 0 to 1): {hv[-1] if hv else 0.0:.4f}",
        "",
    ]
    if command:
        md += ["Made by:", "", f"    {redact(command)}", ""]
    return md


def _front_section(data: StudyData, front: list[TrialRecord], exported: list[str]) -> list[str]:
    md = [f"## Pareto front {budget_title(data)}", ""]
    if len(data.objectives) >= 2:
        md += ["![Pareto front](pareto.png)", ""]
    if len(data.objectives) == 3:
        md += ["![pairwise projections](pareto_pairs.png)", ""]
    if not front:
        return [*md, "No feasible trial has finished its full budget yet.", ""]
    hdr = ["trial", "family", "mixers", *data.objectives, "params", "model file"]
    md += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r, f in zip(front, exported, strict=True):
        cells = [str(r.number), r.family, r.mixers]
        cells += [format_value(m, r.values[m]) for m in data.objectives]
        cells += [format_value("params", r.metrics.get("params")), f"`pareto/{Path(f).name}`"]
        md.append("| " + " | ".join(cells) + " |")
    return [
        *md,
        "",
        "Each model file works as it is: `archsearch build FILE`, `archsearch profile FILE`, "
        "`archsearch train FILE`.",
        "",
    ]


def _families_section(families: list[dict[str, Any]], label: str = "") -> list[str]:
    md = [f"## Families {label}".rstrip(), ""]
    keys = list(families[0]) if families else []
    if keys:
        heads = [k.replace("best_", "best ").replace("on_front", "on the front") for k in keys]
        md += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(keys)]
        for row in families:
            cells = [format_value(k.removeprefix("best_"), row[k]) for k in keys]
            md.append("| " + " | ".join(cells) + " |")
        md.append("")
    return md


def _halving_section(data: StudyData) -> list[str]:
    md = [f"## Successive halving {budget_title(data)}", ""]
    rungs = _rung_table(data)
    if not rungs:
        return [*md, "No trial was trained (or halving was off).", ""]
    flops = (data.settings.get("train") or {}).get("budget_flops")
    hvg = data.settings.get("halving") or {}
    eta, n_rungs = int(hvg.get("eta", 3)), int(hvg.get("rungs", 1))
    fractions = [eta ** -(n_rungs - 1 - r) for r in range(n_rungs)]
    # at equal compute every trial reaches a rung after its own number of tokens: show FLOPs
    budget_col = "training FLOPs" if flops else "tokens"
    md += [
        f"| rung | {budget_col} | trials reached | went on | stopped there |",
        "|---|---|---|---|---|",
    ]
    for row in rungs:
        last = row["promoted"] == row["stopped"] == 0
        went_on = "(full budget)" if last else row["promoted"]
        if flops and row["rung"] < len(fractions):
            spent = fmt.si(float(flops) * fractions[row["rung"]], "FLOP")
        else:
            spent = fmt.si(row["tokens"]) if not flops else "-"
        md.append(f"| {row['rung']} | {spent} | {row['reached']} | {went_on} | {row['stopped']} |")
    return [*md, "", "![learning curves](curves.png)", ""]


def _markdown(
    data: StudyData,
    front: list[TrialRecord],
    hv: list[float],
    importances: tuple[dict[str, dict[str, float]], str],
    families: list[dict[str, Any]],
    exported: list[str],
    command: str,
) -> str:
    imp, why_not = importances
    md = _summary(data, hv, command) + _front_section(data, front, exported)
    md += seeds_section(data, front)
    md += _families_section(families, budget_title(data)) + _halving_section(data)
    md += agreement_section(rung_agreement(data.records), judged_metric(data.settings))
    md += [f"## Hypervolume {budget_title(data)}", ""]
    if data.complete(feasible=True):
        md += [
            "The hypervolume of the feasible front after each trial (normalised objectives, "
            "0 to 1, higher is better): where it flattens, new trials stopped improving the "
            "front.",
            "",
            "![hypervolume history](hypervolume.png)",
            "",
        ]
    md += [f"## Parameter importances {budget_title(data)}", ""]
    md += [f"**{w}**", ""] if imp and (w := plots.importances_warning(data)) else []
    if imp:
        md += [
            "PED-ANOVA (Optuna's default) over the complete trials; see `importances.csv`.",
            "",
            "![parameter importances](importances.png)",
            "",
        ]
    else:
        md += [f"Not computed: {why_not}.", ""]
    md += [
        "## Files",
        "",
        "`trials.csv` (every trial, with its outcome and reason), `families.csv`, "
        "`importances.csv`, `pareto/`; `curves.csv`, `fidelity.csv` and `study.json` keep what "
        "the figures are drawn from (`archsearch report` on this folder draws them again).",
        "",
    ]
    return "\n".join(md)


def _rung_table(data: StudyData) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for r in data.records:
        if r.duplicate_of is not None:
            continue
        for f in r.fidelity:
            row = rows.setdefault(
                f["rung"],
                {
                    "rung": f["rung"],
                    "tokens": f["tokens"],
                    "reached": 0,
                    "promoted": 0,
                    "stopped": 0,
                },
            )
            row["reached"] += 1
            if f.get("promoted") is True:
                row["promoted"] += 1
            elif f.get("promoted") is False:
                row["stopped"] += 1
    return [rows[k] for k in sorted(rows)]


# ---------------------------------------------------------------------------------------------
# what every trial was given (equal compute or equal tokens) and the front over extra seeds


def budget_title(data: StudyData) -> str:
    """'at equal compute (30 TFLOP per trial)' or 'at equal tokens (200 k tokens per trial)',
    from the saved settings: on every figure title and table heading."""
    train = data.settings.get("train") or {}
    if train.get("budget_flops"):
        return f"at equal compute ({fmt.si(float(train['budget_flops']), 'FLOP')} per trial)"
    if train.get("budget_tokens"):
        return f"at equal tokens ({fmt.count(int(train['budget_tokens']), 'tokens')} per trial)"
    return budget_label(train)


def save_seeds(data: StudyData, study: optuna.Study, out: Path) -> None:
    """``seeds.csv``: the front models' runs over extra seeds (``search --front-seeds``)."""
    runs = study.user_attrs.get(FRONT_SEEDS) or {}
    seed = int((data.settings.get("train") or {}).get("seed") or 0)
    rows = seed_rows(runs, data.records, data.objectives, seed)
    path = out / "seeds.csv"
    if rows:
        _write_table(rows, path)
    elif path.exists():
        path.unlink()


def seeds_section(data: StudyData, front: list[TrialRecord]) -> list[str]:
    """The front over seeds: per point and quality objective, mean and 95% interval, and
    whether the point is distinguishable (its interval overlaps neither neighbour's)."""
    by: dict[int, list[dict[str, Any]]] = {}
    for row in data.seeds:
        by.setdefault(int(row["number"]), []).append(row)
    metrics = [m for m in data.objectives if any(m in r for rs in by.values() for r in rs)]
    points = [r for r in front if r.number in by]
    if not points or not metrics:
        return []
    md = [f"## The front over seeds {budget_title(data)}", ""]
    hdr = ["trial", "family", "mixers", "seeds"]
    hdr += [f"{m} mean [95% interval]" for m in metrics] + ["distinguishable"]
    md += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    sums = {
        m: [
            summarise([float(x[m]) for x in by[p.number] if isinstance(x.get(m), (int, float))])
            for p in points
        ]
        for m in metrics
    }
    apart = [all(flags) for flags in zip(*(distinguishable(sums[m]) for m in metrics), strict=True)]
    for i, p in enumerate(points):
        cells = [str(p.number), p.family, p.mixers, str(sums[metrics[0]][i].n)]
        for m in metrics:
            s = sums[m][i]
            cells.append(
                f"{format_value(m, s.mean)} [{format_value(m, s.low)}, {format_value(m, s.high)}]"
            )
        cells.append("yes" if apart[i] else "no")
        md.append("| " + " | ".join(cells) + " |")
    return [
        *md,
        "",
        "A point is distinguishable when its 95% interval over seeds overlaps neither of its "
        "neighbours' along the front; otherwise the two cannot be told apart with these seeds.",
        "",
    ]
