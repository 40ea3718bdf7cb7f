"""``archsearch report``: a study's results as files people open.

Written to the output folder:

- ``trials.csv``: one row per trial (outcome, objectives, every metric, constraints, rung reached,
  parameters, reason);
- ``pareto.png``: the objectives of every trained trial, coloured by family (label), the feasible
  Pareto front joined and numbered; infeasible trials as grey crosses; trials stopped by
  successive halving as faint markers at their last rung's value. Three objectives: a 3-D plot,
  and ``pareto_pairs.png`` with the three 2-D projections;
- ``hypervolume.png``: the hypervolume of the feasible front after each trial, in normalised
  objective space (each objective mapped so that the best value seen is 0 and the reference
  point, the worst value seen pushed out by 10 % of its range, is 1);
- ``curves.png``: the learning curve of every trained trial (quality against tokens), showing
  where successive halving stopped each one;
- ``importances.csv`` and ``importances.png``: Optuna's parameter importances (PED-ANOVA, its
  default) for each objective, from the complete trials;
- ``families.csv``: per family, how many trials, outcomes, the best quality and the lowest cost;
- ``pareto/*.yaml``: the Pareto-optimal models, as model files ``archsearch build/profile/train``
  take as they are;
- ``report.md``: all of the above tied together, with the command that made it.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.search.results import (
    TrialRecord,
    feasible_front,
    hypervolume_history,
    reference_point,
    to_min,
    trial_record,
)
from archsearch.search.space import PROFILE_METRICS

if TYPE_CHECKING:
    import optuna

#: objectives whose values span orders of magnitude get a log axis
_LOG_METRICS = {"params", "flops_fwd", "flops_train", "decode_state_bytes", "latency_ms"}


class StudyData:
    """The records of one study and what they are measured against."""

    def __init__(self, study: optuna.Study) -> None:
        from archsearch.search.study import load_settings

        self.study = study
        self.settings = load_settings(study)
        self.objectives: list[str] = [o["metric"] for o in self.settings["objectives"]]
        self.directions: list[str] = [o["direction"] for o in self.settings["objectives"]]
        self.records = [trial_record(t, self.objectives) for t in study.get_trials(deepcopy=False)]

    @property
    def name(self) -> str:
        return self.study.study_name

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
        pts = [self.min_vector(r) for r in self.complete(feasible=True)]
        if not pts:
            return None
        return [min(c) for c in zip(*pts, strict=True)], reference_point(pts)

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


def normalise(v: Sequence[float], ideal: Sequence[float], ref: Sequence[float]) -> list[float]:
    return [
        (x - lo) / (hi - lo) if hi > lo else 0.0 for x, lo, hi in zip(v, ideal, ref, strict=True)
    ]


# ---------------------------------------------------------------------------------------------


def write_report(study: optuna.Study, out: Path, *, command: str = "") -> dict[str, Any]:
    """Write every report file for ``study`` into ``out``; returns what was written."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    data = StudyData(study)
    files: dict[str, str] = {}
    files["trials"] = str(_write_trials_csv(data, out / "trials.csv"))
    front = data.front()
    files.update(_plot_pareto(data, front, out))
    hv = data.hypervolume_history()
    if data.complete(feasible=True):
        files["hypervolume"] = str(_plot_hv(hv, out / "hypervolume.png"))
    if any(r.fidelity for r in data.records):
        files["curves"] = str(_plot_curves(data, out / "curves.png"))
    importances, why_not = _importances(data)
    if importances:
        files["importances"] = str(_write_importances(importances, out))
    families = _families(data, front)
    files["families"] = str(_write_rows(families, out / "families.csv"))
    exported = _export_front(front, out / "pareto")
    md = _markdown(data, front, hv, importances, why_not, families, exported, command)
    (out / "report.md").write_text(md)
    files["report"] = str(out / "report.md")
    return {
        "study": data.name,
        "out": str(out),
        "files": files,
        "front": [
            {"number": r.number, "label": r.label, **r.values, "model": f}
            for r, f in zip(front, exported, strict=True)
        ],
        "hypervolume": hv[-1] if hv else 0.0,
        "trials": len(data.records),
    }


def _write_trials_csv(data: StudyData, path: Path) -> Path:
    rows = [r.row(data.objectives) for r in data.records]
    return _write_rows(rows, path)


def _write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols or ["empty"])
        w.writeheader()
        w.writerows(rows)
    return path


def _axes_order(data: StudyData) -> list[int]:
    """Cost on x, quality on y when there is one of each; otherwise the file's order."""
    idx = list(range(len(data.objectives)))
    quality = [i for i in idx if data.objectives[i] not in PROFILE_METRICS]
    cost = [i for i in idx if data.objectives[i] in PROFILE_METRICS]
    if len(idx) == 2 and len(quality) == 1 and len(cost) == 1:
        return [cost[0], quality[0]]
    return idx


def _axis_label(data: StudyData, i: int) -> str:
    better = "lower" if data.directions[i] == "minimize" else "higher"
    return f"{data.objectives[i]} ({better} is better)"


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return {lab: cmap(i % 10) for i, lab in enumerate(sorted(set(labels)))}


def _stopped_value(r: TrialRecord, metric: str) -> float | None:
    """A stopped trial's quality at its last rung (only for the task's headline metric)."""
    if r.outcome != "stopped" or not r.fidelity:
        return None
    v = r.fidelity[-1].get("value")
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def _scale(ax: Any, data: StudyData, i: int, axis: str) -> None:
    vals = [r.values[data.objectives[i]] for r in data.complete()]
    vals += [r.metrics.get(data.objectives[i]) for r in data.records if r.metrics]
    vals = [v for v in vals if isinstance(v, (int, float)) and v > 0]
    if data.objectives[i] in _LOG_METRICS and vals and max(vals) / min(vals) > 10:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _plot_pareto(data: StudyData, front: list[TrialRecord], out: Path) -> dict[str, str]:
    import matplotlib.pyplot as plt

    n = len(data.objectives)
    files: dict[str, str] = {}
    labels = [r.label for r in data.records]
    colour = _colours(labels)
    order = _axes_order(data)
    if n == 1:
        return files
    if n == 3:
        fig = plt.figure(figsize=(8, 6.5))
        ax = fig.add_subplot(projection="3d")
        _scatter(ax, data, front, colour, order, three_d=True)
        ax.set_title(f"{data.name}: Pareto front ({len(front)} of {len(data.records)} trials)")
        _save(fig, out / "pareto.png")
        files["pareto"] = str(out / "pareto.png")
        fig, axes = plt.subplots(1, 3, figsize=(16, 5))
        for ax, (a, b) in zip(axes, ((0, 1), (0, 2), (1, 2)), strict=True):
            _scatter(ax, data, front, colour, [a, b], three_d=False, legend=ax is axes[0])
        fig.suptitle(f"{data.name}: pairwise projections (front of all three objectives)")
        _save(fig, out / "pareto_pairs.png")
        files["pareto_pairs"] = str(out / "pareto_pairs.png")
        return files
    fig, ax = plt.subplots(figsize=(8, 5.5))
    _scatter(ax, data, front, colour, order[:2], three_d=False, legend=True)
    ax.set_title(f"{data.name}: Pareto front ({len(front)} of {len(data.records)} trials)")
    _save(fig, out / "pareto.png")
    files["pareto"] = str(out / "pareto.png")
    return files


def _scatter(
    ax: Any,
    data: StudyData,
    front: list[TrialRecord],
    colour: dict[str, Any],
    axes: list[int],
    *,
    three_d: bool,
    legend: bool = True,
) -> None:
    names = [data.objectives[i] for i in axes]
    on_front = {r.number for r in front}
    seen: set[str] = set()
    for r in data.complete():
        xyz = [r.values[m] for m in names]
        if not r.feasible:
            lab = "infeasible" if "infeasible" not in seen else None
            seen.add("infeasible")
            ax.scatter(*xyz, marker="x", color="0.55", s=36, label=lab)
            continue
        lab = r.label if r.label not in seen else None
        seen.add(r.label)
        ax.scatter(*xyz, color=colour[r.label], s=46, label=lab)
        if r.number in on_front:
            lab = "on the Pareto front" if "front" not in seen else None
            seen.add("front")
            ax.scatter(*xyz, s=90, facecolors="none", edgecolors="black", linewidths=1.2, label=lab)
    # trials stopped by successive halving: their quality at the last rung reached
    if not three_d and len(names) == 2:
        qual = [m for m in names if m not in PROFILE_METRICS]
        if len(qual) == 1:
            for r in data.records:
                v = _stopped_value(r, qual[0])
                cost = [m for m in names if m in PROFILE_METRICS]
                if v is None or not cost or cost[0] not in r.metrics:
                    continue
                point = {qual[0]: v, cost[0]: r.metrics[cost[0]]}
                lab = "stopped early (value at its last rung)" if "stopped" not in seen else None
                seen.add("stopped")
                ax.scatter(
                    point[names[0]],
                    point[names[1]],
                    color=colour.get(r.label, "0.5"),
                    alpha=0.3,
                    s=18,
                    marker="v",
                    label=lab,
                )
    if not three_d and front:
        pts = sorted((r.values[names[0]], r.values[names[1]], r.number) for r in front)
        if len(data.objectives) == 2:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="black", lw=0.8, ls="--")
        for x, y, num in pts:
            ax.annotate(f"#{num}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(_axis_label(data, axes[0]))
    ax.set_ylabel(_axis_label(data, axes[1]))
    if three_d:
        ax.set_zlabel(_axis_label(data, axes[2]))
    else:
        _scale(ax, data, axes[0], "x")
        _scale(ax, data, axes[1], "y")
        ax.grid(True, alpha=0.3, which="both")
    if legend:
        ax.legend(fontsize=8, loc="best")


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_hv(hv: list[float], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(len(hv)), hv, marker="o", ms=3)
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume (normalised objectives)")
    ax.set_title("hypervolume of the feasible front after each trial")
    ax.grid(True, alpha=0.3)
    _save(fig, path)
    return path


def _plot_curves(data: StudyData, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colour = _colours([r.label for r in data.records])
    seen: set[str] = set()
    metric = next((m for m in data.objectives if m not in PROFILE_METRICS), None)
    for t in data.study.get_trials(deepcopy=False):
        curve = t.user_attrs.get("curve") or []
        pts = [(x, y) for x, y in curve if x > 0 and y is not None]
        if not pts:
            continue
        r = data.records[t.number]
        lab = r.label if r.label not in seen else None
        seen.add(r.label)
        style = "-" if r.outcome == "complete" else ":"
        ax.plot(*zip(*pts, strict=True), style, color=colour[r.label], alpha=0.8, label=lab)
        if r.outcome == "stopped":
            ax.plot(*pts[-1], marker="v", color=colour[r.label])
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel(f"held-out {metric or 'quality'}")
    ax.set_title("learning curves (dotted, ▼: stopped by successive halving)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)
    return path


def _importances(data: StudyData) -> tuple[dict[str, dict[str, float]], str]:
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
                    data.study, target=lambda t, i=i, sign=sign: sign * t.values[i]
                )
        except Exception as e:  # too few distinct values, one-valued parameters, ...
            why = f"{m}: {type(e).__name__}: {e}"
            continue
        out[m] = {k: float(v) for k, v in imp.items()}
    return out, why


def _write_importances(imp: dict[str, dict[str, float]], out: Path) -> Path:
    import matplotlib.pyplot as plt

    params = sorted({p for d in imp.values() for p in d})
    rows = [{"param": p, **{m: d.get(p) for m, d in imp.items()}} for p in params]
    _write_rows(rows, out / "importances.csv")
    fig, axes = plt.subplots(1, len(imp), figsize=(5.5 * len(imp), 0.4 * len(params) + 1.8))
    axes = axes if len(imp) > 1 else [axes]
    for ax, (m, d) in zip(axes, imp.items(), strict=True):
        ax.barh(params, [d.get(p, 0.0) for p in params])
        ax.set_title(f"importance for {m}")
        ax.invert_yaxis()
    _save(fig, out / "importances.png")
    return out / "importances.png"


def _families(data: StudyData, front: list[TrialRecord]) -> list[dict[str, Any]]:
    on_front = {r.number for r in front}
    rows = []
    for label in sorted({r.label for r in data.records}):
        rs = [r for r in data.records if r.label == label]
        row: dict[str, Any] = {"family": label, "trials": len(rs)}
        for o in ("complete", "stopped", "infeasible", "invalid", "diverged", "failed"):
            row[o] = sum(r.outcome == o for r in rs)
        row["on_front"] = sum(r.number in on_front for r in rs)
        done = [r for r in rs if r.outcome == "complete" and r.feasible and r.values]
        for m, d in zip(data.objectives, data.directions, strict=True):
            vals = [r.values[m] for r in done]
            row[f"best_{m}"] = (min(vals) if d == "minimize" else max(vals)) if vals else None
        rows.append(row)
    return rows


def _export_front(front: list[TrialRecord], folder: Path) -> list[str]:
    from archsearch.model.config import dump_model_config, model_config_from_dict

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("trial-*.yaml"):
        old.unlink()
    files = []
    for r in front:
        cfg = model_config_from_dict(r.model)
        path = folder / f"trial-{r.number:04d}-{r.label.replace('/', '-').replace('+', '-')}.yaml"
        head = (
            f"# Pareto-optimal trial {r.number} ({r.label}): "
            + ", ".join(f"{k} = {_fmt(v)}" for k, v in r.values.items())
            + "\n"
        )
        path.write_text(head + dump_model_config(cfg))
        files.append(str(path))
    return files


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    return str(v)


def _markdown(
    data: StudyData,
    front: list[TrialRecord],
    hv: list[float],
    imp: dict[str, dict[str, float]],
    why_not: str,
    families: list[dict[str, Any]],
    exported: list[str],
    command: str,
) -> str:
    s = data.settings
    counts: dict[str, int] = {}
    for r in data.records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    objs = ", ".join(f"{m} ({d})" for m, d in zip(data.objectives, data.directions, strict=True))
    cons = ", ".join(f"{c['metric']} <= {_fmt(c['max'])}" for c in s.get("constraints", []))
    train = s.get("train", {})
    budget = next(
        (
            f"{k.removeprefix('budget_')} {_fmt(train[k])}"
            for k in ("budget_tokens", "budget_steps", "budget_seconds")
            if train.get(k)
        ),
        "?",
    )
    hvg = s.get("halving", {})
    md = [
        f"# Search report: {data.name}",
        "",
        f"- space: `{s.get('space_source', '?')}` (`{s.get('space_name', '?')}`), "
        f"T = {s.get('space', {}).get('seq_len', '?')}",
        f"- task: {s['task']['name']} {s['task']['options']}",
        f"- profile: {s['profile'].get('name')} ({s['profile'].get('device')}, "
        f"{s['profile'].get('dtype')})",
        f"- objectives: {objs}" + (f"; constraints: {cons}" if cons else ""),
        f"- training: {budget} per trial, batch {train.get('batch_size')}, lr {train.get('lr')}; "
        f"successive halving eta = {hvg.get('eta')}, {hvg.get('rungs')} rungs",
        f"- trials: {len(data.records)} ("
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + ")",
        f"- hypervolume of the feasible front (normalised): {hv[-1] if hv else 0.0:.4f}",
        "",
    ]
    if command:
        md += ["Made by:", "", f"    {command}", ""]
    md += ["## Pareto front", ""]
    if len(data.objectives) >= 2:
        md += ["![Pareto front](pareto.png)", ""]
    if len(data.objectives) == 3:
        md += ["![pairwise projections](pareto_pairs.png)", ""]
    if front:
        hdr = ["trial", "family", *data.objectives, "params", "model file"]
        md += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        for r, f in zip(front, exported, strict=True):
            cells = [str(r.number), r.label, *[_fmt(r.values[m]) for m in data.objectives]]
            cells += [_fmt(r.metrics.get("params", "")), f"`pareto/{Path(f).name}`"]
            md.append("| " + " | ".join(cells) + " |")
        md += [
            "",
            "Each model file works as it is: `archsearch build FILE`, `archsearch profile FILE`, "
            "`archsearch train FILE`.",
            "",
        ]
    else:
        md += ["No feasible trial has finished its full budget yet.", ""]
    md += ["## Families", ""]
    keys = list(families[0]) if families else []
    if keys:
        md += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for row in families:
            md.append(
                "| " + " | ".join(_fmt(row[k]) if row[k] is not None else "-" for k in keys) + " |"
            )
        md.append("")
    md += ["## Successive halving", ""]
    rungs = _rung_table(data)
    if rungs:
        md += [
            "| rung | tokens | trials reached | went on | stopped there |",
            "|---|---|---|---|---|",
        ]
        for row in rungs:
            last = row["promoted"] == row["stopped"] == 0
            went_on = "(full budget)" if last else row["promoted"]
            md.append(
                f"| {row['rung']} | {row['tokens']:,} | {row['reached']} | {went_on} | "
                f"{row['stopped']} |"
            )
        md += ["", "![learning curves](curves.png)", ""]
    else:
        md += ["No trial was trained (or halving was off).", ""]
    md += ["## Hypervolume", ""]
    if data.complete(feasible=True):
        md += ["![hypervolume history](hypervolume.png)", ""]
    md += ["## Parameter importances", ""]
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
        "`importances.csv`, `pareto/`.",
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
