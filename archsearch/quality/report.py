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


def plot_curve(record: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Loss (nats) against tokens: the training loss per step (``record``) and the held-out loss
    at each evaluation (``rows``, as in curve.csv), with the task's context-free baseline;
    accuracy tasks get a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    accuracy = record["metric"] == "accuracy"
    baseline: dict[str, float] = record["baseline"]
    tokens = [r["tokens"] for r in rows]
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(11 if accuracy else 6.5, 4.2))
    ax = axes[0] if accuracy else axes
    tps = rows[1]["tokens"] / rows[1]["step"] if len(rows) > 1 else 0
    if record["train_losses"] and tps:
        steps, losses = zip(*record["train_losses"], strict=True)
        ax.plot([s * tps for s in steps], losses, lw=0.8, alpha=0.6, label="train (per step)")
    ax.plot(tokens, [r["eval_loss"] for r in rows], "o-", label="held-out")
    unigram = baseline.get("unigram_bits_per_byte")
    if unigram is not None:
        ax.axhline(unigram * math.log(2), ls="--", c="gray", label="unigram baseline")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats per scored token)")
    ax.grid(alpha=0.3)
    fmt.legend(ax)
    if accuracy:
        a2 = axes[1]
        a2.plot(tokens, [r["eval_accuracy"] for r in rows], "o-")
        for k, v in baseline.items():
            a2.axhline(v, ls="--", c="gray", label=k.replace("_", " "))
        a2.set_ylim(0, 1.02)
        a2.set_xlabel("tokens seen")
        a2.set_ylabel("held-out accuracy")
        a2.grid(alpha=0.3)
        if baseline:
            fmt.legend(a2)
    fig.suptitle(fmt.plot_text(run_title(record)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
