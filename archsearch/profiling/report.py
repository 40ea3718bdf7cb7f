"""Scaling report files: ``scaling.csv``, log-log PNG plots, fitted exponents, ``summary.md``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from archsearch.profiling.runner import Point, upper_fit_points
from archsearch.profiling.scaling import loglog_slope

#: plotted/fitted metric -> (CSV column, axis label)
PLOTS: dict[str, tuple[str, str]] = {
    "flops": ("flops_fcm_forward", "forward FLOPs / sequence (FlopCounterMode)"),
    "mixing": (
        "flops_mixing_fcm",
        "token-mixing FLOPs / sequence (FlopCounterMode)",
    ),
    "memory": ("mem_train_peak_bytes", "training-step peak memory, bytes (estimate)"),
    "latency": ("fwd_ms_median", "forward latency, ms (median)"),
}
#: metrics whose reference slope is the variant's FLOP exponent (memory: slope 1)
SLOPE_FROM_THEORY = ("flops", "mixing", "latency")
#: the dashed reference lines pass through each variant's last point times this, so that they
#: stay visible where the data follow them
REF_OFFSET = 0.5
#: fallbacks when the preferred column is absent (e.g. FLOPs without the counter)
FALLBACK = {"flops": "flops_fwd_dense", "memory": "mem_measured_train_peak_bytes"}


def csv_columns(points: list[Point]) -> list[str]:
    cols: list[str] = []
    for p in points:
        for k in p.row:
            if k not in cols:
                cols.append(k)
    return cols


def write_csv(points: list[Point], path: Path) -> None:
    cols = csv_columns(points)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for p in points:
            w.writerow({k: _cell(p.row.get(k)) for k in cols})


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def metric_column(points: list[Point], metric: str) -> str | None:
    col = PLOTS[metric][0]
    if any(col in p.row for p in points):
        return col
    fb = FALLBACK.get(metric)
    if fb and any(fb in p.row for p in points):
        return fb
    return None


def series(points: list[Point], variant: str, col: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for p in points:
        v = p.row.get(col)
        if p.variant == variant and p.status == "ok" and isinstance(v, (int, float)) and v > 0:
            xs.append(p.seq_len)
            ys.append(float(v))
    return xs, ys


def fit_exponents(points: list[Point], variants: list[str], metrics: list[str]) -> list[dict]:
    """Per variant and metric: the log-log slope over the upper half of the measured lengths."""
    out = []
    for v in variants:
        theory = next(
            (
                p.row["flop_exponent_theory"]
                for p in points
                if p.variant == v and "flop_exponent_theory" in p.row
            ),
            None,
        )
        for m in metrics:
            col = metric_column(points, m)
            if col is None:
                continue
            xs, ys = upper_fit_points(*series(points, v, col))
            out.append(
                {
                    "variant": v,
                    "metric": m,
                    "column": col,
                    "fitted_exponent": loglog_slope(xs, ys) if xs else None,
                    "fit_from": xs[0] if xs else None,
                    "fit_to": xs[-1] if xs else None,
                    "theory": theory if m in SLOPE_FROM_THEORY else None,
                }
            )
    return out


def plot_metric(points: list[Point], variants: list[str], metric: str, path: Path) -> bool:
    """One log-log plot: a line per variant and, dashed, its theoretical slope through its last
    point (the FLOP exponent for FLOPs and latency; slope 1 for memory)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = metric_column(points, metric)
    if col is None:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    drawn = False
    for i, v in enumerate(variants):
        xs, ys = series(points, v, col)
        if not xs:
            continue
        color = f"C{i % 10}"
        ax.plot(xs, ys, "o-", color=color, label=v, markersize=4)
        theory = next((p.row.get("flop_exponent_theory") for p in points if p.variant == v), None)
        slope = theory if metric in SLOPE_FROM_THEORY else 1.0
        if slope and len(xs) > 1:
            x0, y0 = xs[-1], REF_OFFSET * ys[-1]
            ref = [y0 * (x / x0) ** slope for x in xs]
            ax.plot(xs, ref, "--", color=color, alpha=0.45, linewidth=1)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (tokens)")
    ax.set_ylabel(PLOTS[metric][1] if col == PLOTS[metric][0] else col)
    what = "theoretical slope" if metric in SLOPE_FROM_THEORY else "slope 1"
    ax.set_title(f"{metric} vs T (dashed: {what}, through the last point x{REF_OFFSET})")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(v: Any) -> str:
    from archsearch.cli._common import si

    if isinstance(v, bool) or v is None or v == "":
        return "" if v is None else str(v)
    if isinstance(v, int):
        return si(v)
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def pivot_table(points: list[Point], variants: list[str], col: str) -> list[str]:
    lengths = sorted({p.seq_len for p in points})
    lines = ["| T | " + " | ".join(variants) + " |", "|---:|" + "---:|" * len(variants)]
    for T in lengths:
        cells = []
        for v in variants:
            p = next((q for q in points if q.variant == v and q.seq_len == T), None)
            if p is None:
                cells.append("")
            elif p.status != "ok":
                cells.append("invalid")
            elif col in p.row:
                cells.append(_fmt(p.row[col]))
            else:
                status = p.row.get("latency_status", "") if col.startswith(("fwd", "train")) else ""
                cells.append("skipped" if status and status != "ok" else "")
        lines.append(f"| {T:,} | " + " | ".join(cells) + " |")
    return lines


def write_summary(
    out: Path,
    points: list[Point],
    variants: list[str],
    metrics: list[str],
    fits: list[dict],
    plots: dict[str, str],
    env: dict[str, Any],
    profile: dict[str, Any],
    command: str,
) -> None:
    md = [
        "# Scaling report",
        "",
        f"Command: `{command}`",
        "",
        f"Device: {env.get('device_name')} ({profile.get('name')} profile: {profile.get('dtype')},"
        f" batch {profile.get('batch_size')}); archsearch {env.get('archsearch')} "
        f"(git {env.get('git_sha')}{', dirty' if env.get('git_dirty') else ''}), "
        f"torch {env.get('torch')}. Full environment: `env.json`; every number: `scaling.csv`.",
        "",
        "FLOPs count a multiply-add as 2, per sequence (batch 1). *Exact* counts unmasked "
        "query-key pairs only, *dense* the score blocks the implementation computes; "
        "FlopCounterMode runs the real model on the meta device (nothing allocated). Memory is "
        "the FakeTensor estimate unless marked measured. Each point is the variant built for a "
        "window of T tokens.",
        "",
    ]
    if fits:
        md += [
            "## Fitted exponents",
            "",
            "Least-squares slope of log(metric) vs log(T) over the upper half of the lengths "
            "measured; *theory*: the variant's asymptotic FLOP exponent (memory has none: its "
            "plot draws slope 1 as a guide). "
            "*mixing* is the token-mixing work alone (attention core + elementwise mixing: every "
            "counted op but the dense layers' mm/addmm); the whole forward also holds the "
            "projections, MLPs and LM head, linear in T, so its slope reaches the theory only "
            "where mixing dominates.",
            "",
            "| variant | metric | fitted | theory | fitted over T |",
            "|---|---|---:|---:|---|",
        ]
        for f in fits:
            fe = "" if f["fitted_exponent"] is None else f"{f['fitted_exponent']:.3f}"
            rng = f"{f['fit_from']:,} – {f['fit_to']:,}" if f["fit_from"] else "too few points"
            md.append(f"| {f['variant']} | {f['metric']} | {fe} | {_fmt(f['theory'])} | {rng} |")
        md.append("")
    sections = [
        ("flops", "Forward FLOPs per sequence, FlopCounterMode", "flops_fcm_forward"),
        ("flops", "Forward FLOPs per sequence, analytic exact", "flops_fwd_exact"),
        ("mixing", "Token-mixing FLOPs per sequence, FlopCounterMode", "flops_mixing_fcm"),
        ("flops", "Forward + backward FLOPs, FlopCounterMode", "flops_fcm_forward_backward"),
        ("flops", "What fvcore as shipped misses (FLOPs)", "flops_missed_by_fvcore_as_shipped"),
        ("memory", "Training-step peak memory, bytes (estimate)", "mem_train_peak_bytes"),
        ("memory", "Inference peak memory, bytes (estimate)", "mem_inference_peak_bytes"),
        ("memory", "Decode state, bytes", "mem_decode_state_bytes"),
        ("memory", "Training-step peak memory, bytes (measured)", "mem_measured_train_peak_bytes"),
        ("latency", "Forward latency, ms (median)", "fwd_ms_median"),
        ("latency", "Training step latency, ms (median)", "train_ms_median"),
        ("latency", "Decode latency per token, ms (median)", "decode_ms_median"),
    ]
    for metric, title, col in sections:
        if metric not in metrics or not any(col in p.row for p in points):
            continue
        md += [f"## {title}", "", *pivot_table(points, variants, col), ""]
        if metric in plots and col == PLOTS[metric][0]:
            md += [f"![{metric}]({plots[metric]})", ""]
    for metric, name in plots.items():
        if f"({name})" not in "\n".join(md):
            md += [f"![{metric}]({name})", ""]
    problems = [p for p in points if p.status != "ok"]
    skipped = [p for p in points if p.status == "ok" and p.row.get("latency_status", "ok") != "ok"]
    if problems or skipped:
        md += ["## Skipped", ""]
        md += [f"- {p.variant} at T = {p.seq_len:,}: {p.row['note']}" for p in problems]
        md += [
            f"- {p.variant} at T = {p.seq_len:,}: latency {p.row['latency_status']}"
            for p in skipped
        ]
        md.append("")
    warns = sorted({w for p in points for w in p.warnings})
    if warns:
        md += ["## Counter warnings", ""] + [f"- {w}" for w in warns] + [""]
    (out / "summary.md").write_text("\n".join(md))


def write_report(
    out: Path,
    points: list[Point],
    variants: list[str],
    metrics: list[str],
    env: dict[str, Any],
    profile: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    """Write every file of a scaling report into ``out``; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(points, out / "scaling.csv")
    plots = {}
    for m in metrics:
        name = f"{m}.png"
        if plot_metric(points, variants, m, out / name):
            plots[m] = name
    fits = fit_exponents(points, variants, metrics)
    with (out / "exponents.csv").open("w", newline="") as fh:
        cols = ["variant", "metric", "column", "fitted_exponent", "fit_from", "fit_to", "theory"]
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows({k: _cell(f[k]) for k in cols} for f in fits)
    (out / "env.json").write_text(json.dumps({"environment": env, "profile": profile}, indent=2))
    write_summary(out, points, variants, metrics, fits, plots, env, profile, command)
    return {"out": str(out), "plots": plots, "fits": fits}
