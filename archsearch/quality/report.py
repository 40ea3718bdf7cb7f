"""Files a training run leaves: result.json, curve.csv and the learning curve curve.png."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archsearch.quality.train import TrainResult


def curve_rows(res: TrainResult) -> list[dict[str, Any]]:
    """One row per evaluation point: step, tokens, seconds, lr, training loss, held-out metrics."""
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
    """Write the run's files into ``out``; returns ``{kind: path}``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"result": str(out / "result.json"), "curve_csv": str(out / "curve.csv")}
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
        files["curve_png"] = str(out / "curve.png")
        plot_curve(res, Path(files["curve_png"]))
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


def plot_curve(res: TrainResult, path: Path) -> None:
    """Loss (nats) against tokens: the training loss per step and the held-out loss at each
    evaluation, with the task's context-free baseline; accuracy tasks get a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    accuracy = res.metric == "accuracy"
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(11 if accuracy else 6.5, 4.2))
    ax = axes[0] if accuracy else axes
    tps = res.curve[1].tokens / res.curve[1].step if len(res.curve) > 1 else 0
    if res.train_losses and tps:
        steps, losses = zip(*res.train_losses, strict=True)
        ax.plot([s * tps for s in steps], losses, lw=0.8, alpha=0.6, label="train (per step)")
    ax.plot(
        [p.tokens for p in res.curve],
        [p.metrics["loss"] for p in res.curve],
        "o-",
        label="held-out",
    )
    unigram = res.baseline.get("unigram_bits_per_byte")
    if unigram is not None:
        ax.axhline(unigram * math.log(2), ls="--", c="gray", label="unigram baseline")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats per scored token)")
    ax.grid(alpha=0.3)
    ax.legend()
    name = res.model.get("name") or "model"
    title = f"{name} on {res.task}: {res.status}"
    if accuracy:
        a2 = axes[1]
        a2.plot([p.tokens for p in res.curve], [p.metrics["accuracy"] for p in res.curve], "o-")
        for k, v in res.baseline.items():
            a2.axhline(v, ls="--", c="gray", label=k.replace("_", " "))
        a2.set_ylim(0, 1.02)
        a2.set_xlabel("tokens seen")
        a2.set_ylabel("held-out accuracy")
        a2.grid(alpha=0.3)
        if res.baseline:
            a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
