"""The claims report: ``README.md`` and one figure per claim, drawn only from the saved records
(``results.csv``, ``curves.csv`` and ``runs.json`` of each scale) plus the spec and the model
YAMLs (for the analytic costs), so ``archsearch claims --report-only`` redraws it anywhere.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from archsearch import fmt
from archsearch.model.config import load_model_config_located
from archsearch.model.costs import model_cost
from archsearch.search.claims.spec import Claim, Scale, Spec
from archsearch.search.claims.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    ExperimentRuns,
    RowResult,
    judge_claim,
)
from archsearch.search.plots import axis_label
from archsearch.search.stats import summarise

_BADGE = {REPRODUCED: "**reproduced**", NOT_REPRODUCED: "**not reproduced**"}
_BADGE[INCONCLUSIVE] = "inconclusive at this scale"


@dataclass
class ScaleRecords:
    """One scale's saved records."""

    scale: Scale
    folder: Path
    results: list[dict[str, str]]
    curves: list[dict[str, str]]
    calls: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> dict[str, ExperimentRuns]:
        out: dict[str, ExperimentRuns] = {}
        for name, exp in self.scale.experiments.items():
            rows = [r for r in self.results if r["experiment"] == name]
            metric = rows[0]["metric"] if rows else ("accuracy" if exp.task == "mqar" else "")
            values: dict[str, dict[int, float]] = {}
            for r in rows:
                v = _num(r["value"])
                if r["status"] == "completed" and v is not None:
                    values.setdefault(r["model"], {})[int(r["seed"])] = v
            out[name] = ExperimentRuns(metric or "bits_per_byte", metric != "accuracy", values)
        return out


def _num(s: Any) -> float | None:
    try:
        v = float(s)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_records(scale: Scale, folder: Path) -> ScaleRecords:
    calls_path, meta_path = folder / "runs.json", folder / "meta.json"
    return ScaleRecords(
        scale,
        folder,
        _read_csv(folder / "results.csv"),
        _read_csv(folder / "curves.csv"),
        json.loads(calls_path.read_text()) if calls_path.exists() else [],
        json.loads(meta_path.read_text()) if meta_path.exists() else {},
    )


@cache
def _cost(path: Path, seq_len: int) -> dict[str, float]:
    cfg, _ = load_model_config_located(path)
    c = model_cost(cfg, seq_len)
    return {
        "flops_train": c.training_exact / seq_len,
        "flops_fwd": c.forward_exact / seq_len,
        "decode_state": float(c.decode_state),
        "params": float("nan"),
    }


def cost_fn(scale: Scale) -> Any:
    """(experiment, model, cost, seq_len) -> the analytic cost per token (decode state: numbers
    held at the end of a window), at the experiment's window unless ``seq_len`` is given."""

    def cost(exp: str, model: str, what: str, seq_len: int | None) -> float:
        t = seq_len or scale.experiments[exp].seq_len
        return _cost(scale.model_path(model), t)[what]

    return cost


# ---- figures ----


def _style(models: list[str], name: str) -> fmt.Style:
    """One colour and marker per model, the same in every figure of the report: the model's
    place among the scale's models (a task prefix such as ``mqar-`` dropped, so the MQAR
    softmax looks like the lm softmax) picks its :func:`archsearch.fmt.style_of`; no two models
    of a scale share both."""
    base = [m.split("-", 1)[1] if m.startswith("mqar-") else m for m in models]
    key = name.split("-", 1)[1] if name.startswith("mqar-") else name
    order = list(dict.fromkeys(base))
    return fmt.style_of(order.index(key) if key in order else len(order))


def _curve_points(rec: ScaleRecords, exp: str, model: str) -> list[tuple[float, Any]]:
    """(mean FLOPs spent, Summary of the metric over seeds) at each evaluation point."""
    by_point: dict[int, list[tuple[float, float]]] = {}
    for r in rec.curves:
        if r["experiment"] == exp and r["model"] == model:
            v, f = _num(r["value"]), _num(r["flops_spent"])
            if v is not None and f is not None and f > 0:
                by_point.setdefault(int(r["point"]), []).append((f, v))
    out = []
    for _, pts in sorted(by_point.items()):
        out.append((sum(p[0] for p in pts) / len(pts), summarise([p[1] for p in pts])))
    return out


def plot_claim(claim: Claim, rec: ScaleRecords, models: list[str], path: Path) -> Path | None:
    """Quality against training FLOPs spent, mean and 95% interval over seeds at each
    evaluation, one colour and marker per model, one panel per experiment of the claim."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exps = list(dict.fromkeys(r.experiment for r in claim.rows if r.test != "cheaper"))
    if not exps or not rec.curves:
        return None
    fig, axes = plt.subplots(
        1, len(exps), figsize=(6.5 * len(exps), 4.8), squeeze=False, layout="constrained"
    )
    for ax, exp in zip(axes[0], exps, strict=True):
        runs = rec.runs()[exp]
        for name in _claim_models(claim, exp, rec):
            pts = _curve_points(rec, exp, name)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1].mean for p in pts]
            err = [0.0 if math.isnan(p[1].half_width) else p[1].half_width for p in pts]
            n = max(p[1].n for p in pts)
            ax.errorbar(xs, ys, yerr=err, capsize=3, markersize=6, linewidth=1.2,
                        label=f"{fmt.plot_text(name)} (n = {n})",
                        **_style(models, name).line())  # fmt: skip
        fmt.si_axis(ax, "x", "FLOP")
        ax.set_xlabel("training FLOPs spent")
        better = "lower" if runs.lower_is_better else "higher"
        ax.set_ylabel(f"{axis_label(runs.metric)}, {better} is better")
        ax.set_title(f"{exp}: mean and 95% interval over seeds", fontsize=10)
        ax.grid(True, alpha=0.3, which="both")
        fmt.legend(ax, fontsize=7)
        if runs.lower_is_better:
            _zoom(ax, rec, exp, claim)
    fig.suptitle(fmt.plot_text(f"Claim {claim.id}: {claim.title}"), fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _zoom(ax: Any, rec: ScaleRecords, exp: str, claim: Claim) -> None:
    """Lower-is-better curves start far above where they end: show the second half."""
    finals = []
    for name in _claim_models(claim, exp, rec):
        pts = _curve_points(rec, exp, name)
        finals += [p[1].mean for p in pts[len(pts) // 2 :]]
    if finals:
        lo, hi = min(finals), max(finals)
        pad = max(0.05, 0.15 * (hi - lo))
        ax.set_ylim(lo - pad, hi + pad)


def _claim_models(claim: Claim, exp: str, rec: ScaleRecords) -> list[str]:
    names: list[str] = []
    chosen = {s.name: s.among for s in claim.selections}
    for r in claim.rows:
        if r.experiment != exp:
            continue
        for n in (r.model, r.baseline):
            if n is not None:
                names += list(chosen.get(n, (n,)))
    return list(dict.fromkeys(names))


# ---- the markdown ----


def _cell(s: Any, digits: int = 3) -> str:
    if s is None:
        return "-"
    if s.n < 2:
        return f"{s.mean:.{digits}f} (n = 1)"
    return f"{s.mean:+.{digits}f} [{s.low:+.{digits}f}, {s.high:+.{digits}f}]"


def _row_text(r: RowResult, runs: ExperimentRuns, margin: float, threshold: float) -> str:
    row = r.row
    if row.test == "cheaper":
        a, b = r.costs or (math.nan, math.nan)
        at = f" at T = {row.seq_len:,}" if row.seq_len else ""
        what = {"flops_train": "training FLOPs per token", "flops_fwd": "inference FLOPs per "
                "token", "decode_state": "decode state (numbers)"}[row.cost or ""]  # fmt: skip
        return f"{what}{at}: {fmt.si(a)} vs {fmt.si(b)}"
    if row.test == "solves":
        s = r.value
        mean = "-" if s is None else f"{s.mean:.3f} [{s.low:.3f}, {s.high:.3f}] (n = {s.n})"
        return f"{runs.metric} {mean}; solved means >= {threshold:g}"
    kind = "close to" if row.test == "close" else "better than"
    tail = f"; margin {margin:.4f}" if row.test == "close" else ""
    return f"{kind} {r.baseline}: difference {_cell(r.value, 4)}{tail}"


def claim_section(
    claim: Claim,
    recs: list[ScaleRecords],
    spec: Spec,
    models: dict[str, list[str]],
    home: Path,
) -> tuple[list[str], dict[str, str]]:
    """The claim's markdown section and its verdict per scale."""
    verdicts: dict[str, str] = {}
    md = [f"## Claim {claim.id}: {claim.title}", "", f"> {claim.quote}", ">",
          f"> {claim.source}", ""]  # fmt: skip
    for rec in recs:
        runs = rec.runs()
        verdict, results, resolve = judge_claim(
            claim, runs, cost_fn(rec.scale), margin=spec.close_margin,
            threshold=spec.solve_accuracy,
        )  # fmt: skip
        verdicts[rec.scale.name] = verdict
        md += [f"### {rec.scale.name.upper()}: {_BADGE[verdict]} (rule: {claim.rule} rows)", ""]
        for s in claim.selections:
            won = resolve.get(s.name) or "-"
            among = ", ".join(s.among)
            md.append(f"- `{s.name}` = **{won}**, the best mean of {among} in {s.experiment} "
                      "(chosen on the same seeds)")  # fmt: skip
        if claim.selections:
            md.append("")
        md += ["| experiment | model | test | measured (95% interval) | verdict |",
               "|---|---|---|---|---|"]  # fmt: skip
        for r in results:
            mark = "" if r.row.counts else " (shown, not counted)"
            text = _row_text(r, runs[r.row.experiment], spec.close_margin, spec.solve_accuracy)
            md.append(f"| {r.row.experiment} | {r.model} | {r.row.test}{mark} | {text} | "
                      f"{_BADGE[r.verdict]}: {r.why} |")  # fmt: skip
        md += ["", *_cost_table(claim, rec, home), ""]
        png = plot_claim(claim, rec, models[rec.scale.name], rec.folder / f"claim-{claim.id}.png")
        if png is not None:
            rel = Path(os.path.relpath(png, home)).as_posix()
            md += [f"![claim {claim.id}, {rec.scale.name}]({rel})", ""]
    if claim.notes:
        md += [claim.notes.strip(), ""]
    return md, verdicts


def _cost_table(claim: Claim, rec: ScaleRecords, home: Path) -> list[str]:
    cost = cost_fn(rec.scale)
    lines = [
        "| model | experiment | T | params | training FLOPs / token | inference FLOPs / token "
        "| decode state (numbers) | mean over seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    runs = rec.runs()
    seen = set()
    for r in claim.rows:
        for name in _claim_models(claim, r.experiment, rec):
            if (name, r.experiment) in seen:
                continue
            seen.add((name, r.experiment))
            vals = runs[r.experiment].values.get(name, {})
            s = summarise(list(vals.values())) if vals else None
            params = next((x["params"] for x in rec.results if x["model"] == name
                           and x["experiment"] == r.experiment), "-")  # fmt: skip
            t = rec.scale.experiments[r.experiment].seq_len
            lines.append(
                f"| [{name}]({_model_link(rec, name, home)}) | {r.experiment} | {t} | {params} | "
                f"{fmt.si(cost(r.experiment, name, 'flops_train', None))} | "
                f"{fmt.si(cost(r.experiment, name, 'flops_fwd', None))} | "
                f"{_state(cost(r.experiment, name, 'decode_state', None))} | "
                f"{_mean_cell(s)} |"
            )
    return lines


def _model_link(rec: ScaleRecords, name: str, home: Path) -> str:
    return Path(os.path.relpath(rec.scale.model_path(name), home)).as_posix()


def _state(n: float) -> str:
    """Numbers held to decode; 0 means the model has no incremental decoder."""
    return fmt.si(n) if n else "- (no decoder)"


def _mean_cell(s: Any) -> str:
    if s is None:
        return "-"
    if s.n < 2:
        return f"{s.mean:.3f} (n = 1)"
    return f"{s.mean:.3f} [{s.low:.3f}, {s.high:.3f}]"
