"""Files a training run leaves: result.json, curve.csv and the learning curve curve.png.

:func:`write_result` saves a :class:`~archsearch.quality.train.TrainResult`; everything after that
works from the saved files alone: :func:`redraw_curve` draws curve.png from result.json and
curve.csv (so a figure can be redrawn without training again), and :func:`summary_rows` gives the
summary table of a saved record, its numbers formatted like every other table
(:mod:`archsearch.metrics`, :mod:`archsearch.fmt`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch import fmt
from archsearch.metrics import get_metric, is_metric

if TYPE_CHECKING:
    from archsearch.quality.train import TrainResult

RESULT, CURVE_CSV, CURVE_PNG = "result.json", "curve.csv", "curve.png"


def curve_rows(res: TrainResult) -> list[dict[str, Any]]:
    """One row per evaluation point: step, tokens, seconds, lr, training loss, held-out metrics
    (``eval_<metric>``)."""
    rows = []
    for p in res.curve:
        row: dict[str, Any] = {
            "step": p.step,
            "tokens": p.tokens,
            "train_seconds": p.train_seconds,
            "lr": p.lr,
            "train_loss": p.train_loss,
        }
        row.update({f"eval_{k}": v for k, v in p.metrics.items()})
        rows.append(row)
    return rows


def write_result(out: Path, res: TrainResult, *, command: str = "") -> dict[str, str]:
    """Write the run's files into ``out``; returns ``{kind: path}``. The plot is drawn from the
    files just written (:func:`redraw_curve`)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"result": str(out / RESULT), "curve_csv": str(out / CURVE_CSV)}
    data = res.to_dict()
    data["command"] = command
    Path(files["result"]).write_text(json.dumps(_finite(data), indent=2, default=str) + "\n")
    rows = curve_rows(res)
    with open(files["curve_csv"], "w", newline="") as f:
        cols = list(dict.fromkeys(k for r in rows for k in r)) or ["step"]
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    if res.curve:
        files["curve_png"] = str(redraw_curve(out))
    return files


def _finite(x: Any) -> Any:
    """Strict JSON: a non-finite float becomes its string ("nan", "inf")."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def read_run(out: Path) -> tuple[dict[str, Any], list[dict[str, float | None]]]:
    """A saved run: its result.json record and its curve.csv rows (numbers; empty cells None)."""
    record = json.loads((out / RESULT).read_text())
    with open(out / CURVE_CSV, newline="") as f:
        rows = [
            {k: None if v == "" else float(v) for k, v in row.items()} for row in csv.DictReader(f)
        ]
    return record, rows


def redraw_curve(out: Path, path: Path | None = None) -> Path:
    """Draw the learning curve of the run saved in ``out`` into ``path`` (default
    ``out/curve.png``) from its result.json and curve.csv; returns the path."""
    record, rows = read_run(out)
    path = path or out / CURVE_PNG
    plot_curve(record, rows, path)
    return path


def run_title(record: Mapping[str, Any]) -> str:
    """'tiny on lm: completed'."""
    return f"{record['model'].get('name') or 'model'} on {record['task']}: {record['status']}"


def _metric_label(name: str) -> str:
    """'held-out bits per byte (bit/byte)', 'held-out accuracy': the registry's unit on the axis."""
    unit = get_metric(name).unit if is_metric(name) else ""
    text = "held-out " + name.replace("_", " ")
    return f"{text} ({unit})" if unit else text


def _loss_panel(
    ax: Any, record: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], scale: float
) -> None:
    """Training loss per step divided by ``scale`` (ln 2 turns the lm's nats per byte into bits
    per byte) and the held-out value per evaluation (its recorded bits per byte, or loss)."""
    tokens = [r["tokens"] for r in rows]
    tps = rows[1]["tokens"] / rows[1]["step"] if len(rows) > 1 and rows[1]["step"] else 0
    if record["train_losses"] and tps:
        steps, losses = zip(*record["train_losses"], strict=True)
        train = [v / scale for v in losses]
        ax.plot([s * tps for s in steps], train, lw=0.8, alpha=0.6, label="train (per step)")
    key = "eval_bits_per_byte" if scale != 1.0 and "eval_bits_per_byte" in rows[0] else "eval_loss"
    held = [r[key] if key != "eval_loss" else r[key] / scale for r in rows]
    # a run's evaluations are sized from its budget: a short run may have only step 0 and the
    # end, so the line says how many points it joins (the training curve shows the shape)
    few = len(held) <= 3
    ax.plot(tokens, held, "o--" if few else "o-", label=f"held-out ({len(held)} evaluations)")


def plot_curve(record: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], path: Path) -> Any:
    """The task's headline metric against tokens, in its unit: bits per byte for lm (the
    training loss per step and the held-out value at each evaluation, with the unigram
    baseline); accuracy tasks plot held-out accuracy with their baselines and, beside it, the
    loss in nats. Returns the (closed) figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = record["metric"]
    baseline: dict[str, float] = record["baseline"]
    bpb = metric == "bits_per_byte"
    headline = not bpb and f"eval_{metric}" in (rows[0] if rows else {})
    fig, axes = plt.subplots(
        1, 2 if headline else 1, figsize=(11 if headline else 6.5, 4.2), layout="constrained"
    )
    ax = axes[-1] if headline else axes
    _loss_panel(ax, record, rows, math.log(2) if bpb else 1.0)
    unigram = baseline.get("unigram_bits_per_byte")
    if unigram is not None:
        ax.axhline(
            unigram if bpb else unigram * math.log(2), ls="--", c="gray", label="unigram baseline"
        )
    ax.set_ylabel(_metric_label("bits_per_byte") if bpb else "loss (nats per scored token)")
    if headline:
        a2 = axes[0]
        a2.plot([r["tokens"] for r in rows], [r[f"eval_{metric}"] for r in rows], "o-")
        for k, v in baseline.items():
            a2.axhline(v, ls="--", c="gray", label=k.replace("_", " "))
        if metric == "accuracy":
            a2.set_ylim(0, 1.02)
        a2.set_ylabel(_metric_label(metric))
        if baseline:
            fmt.legend(a2)
    for a in axes if headline else [axes]:
        a.set_xlabel("tokens seen")
        a.grid(alpha=0.3)
    fmt.legend(ax)
    fig.suptitle(fmt.plot_text(run_title(record)))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def _metric_cell(name: str, v: Any) -> str:
    """A held-out value as its registered metric shows it (a plain table cell otherwise)."""
    return get_metric(name).format(v) if is_metric(name) else fmt.value(v)


def summary_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(quantity, value) rows of a run's summary table, from its result record."""
    metric, final, best = record["metric"], record["final"], record["best"]
    rows = [(f"final {metric}", _metric_cell(metric, final.get(metric, float("nan"))))]
    if best:
        value = _metric_cell(metric, best["value"])
        rows.append((f"best {metric}", f"{value} (step {best['step']})"))
    rows += [(k.replace("_", " "), fmt.value(v)) for k, v in record["baseline"].items()]
    train_s, wall_s = record["train_seconds"], record["wall_seconds"]
    return [
        *rows,
        ("held-out loss (nats)", _metric_cell("loss", final.get("loss", float("nan")))),
        ("steps", f"{record['steps']:,}"),
        ("tokens seen", f"{record['tokens_seen']:,}"),
        ("training time", f"{train_s:.1f} s (wall {wall_s:.1f} s)"),
        ("tokens/s", f"{record['tokens_per_s']:,.0f}"),
        ("parameters", f"{record['params']:,}"),
    ]
