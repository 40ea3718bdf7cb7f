"""Scaling report files: ``scaling.csv``, log-log PNG plots, fitted exponents, ``summary.md``.

A report is a function of its saved files. :func:`write_report` saves ``scaling.csv`` (every
number) and ``env.json`` (the machine, the profile, the command), then :func:`draw_report` draws
the plots, ``exponents.csv`` and ``summary.md`` from those two files alone; ``archsearch scale
--replot DIR`` runs :func:`draw_report` again without building a model. The columns that name a
registered quantity use its name and unit (:mod:`archsearch.metrics`: ``flops_fwd``,
``flops_train``, ``peak_memory_gib``, ``latency_ms``, ``decode_ms``); see docs/costs.md,
"FLOP conventions" and "Memory".
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from archsearch import fmt
from archsearch.profiling.runner import Point, upper_fit_points
from archsearch.profiling.scaling import loglog_slope

#: plotted/fitted metric -> (CSV column, axis label)
PLOTS: dict[str, tuple[str, str]] = {
    "flops": ("flops_fcm_forward", "forward FLOPs / sequence (FlopCounterMode)"),
    "mixing": (
        "flops_mixing_fcm",
        "token-mixing FLOPs / sequence (FlopCounterMode)",
    ),
    "memory": ("peak_memory_gib", "training-step peak memory, GiB (estimate)"),
    "latency": ("latency_ms", "forward latency, ms (median)"),
}
#: metrics whose reference slope is the variant's FLOP exponent (memory: slope 1)
SLOPE_FROM_THEORY = ("flops", "mixing", "latency")
#: the dashed reference lines pass through each variant's last point times this, so that they
#: stay visible where the data follow them
REF_OFFSET = 0.5
#: fallbacks when the preferred column is absent (e.g. FLOPs without the counter)
FALLBACK = {"flops": "flops_fwd_dense", "memory": "mem_measured_train_peak_bytes"}
#: what the profile measured, told by a column only that measurement writes
MEASURED_BY = {
    "flops": "flops_counters_agree",
    "memory": "mem_params_bytes",
    "latency": "latency_status",
}
#: float columns written with every digit (GiB of a whole number of bytes: exact in binary)
FULL_PRECISION = frozenset({"peak_memory_gib"})
#: ``summary.md`` tables: (metric, title, column)
SECTIONS = (
    ("flops", "Forward FLOPs per sequence, FlopCounterMode", "flops_fcm_forward"),
    ("flops", "Forward FLOPs per sequence, analytic exact", "flops_fwd"),
    ("mixing", "Token-mixing FLOPs per sequence, FlopCounterMode", "flops_mixing_fcm"),
    ("flops", "Forward + backward FLOPs, FlopCounterMode", "flops_fcm_forward_backward"),
    ("flops", "What fvcore as shipped misses (FLOPs)", "flops_missed_by_fvcore_as_shipped"),
    ("memory", "Training-step peak memory, GiB (estimate)", "peak_memory_gib"),
    ("memory", "Inference peak memory, bytes (estimate)", "mem_inference_peak_bytes"),
    ("memory", "Decode state, bytes", "mem_decode_state_bytes"),
    ("memory", "Training-step peak memory, bytes (measured)", "mem_measured_train_peak_bytes"),
    ("latency", "Forward latency, ms (median)", "latency_ms"),
    ("latency", "Training step latency, ms (median)", "train_ms_median"),
    ("latency", "Decode latency per token, ms (median)", "decode_ms"),
)
#: timed columns whose empty cell means "skipped" (the point's latency_status says why)
SKIPPABLE = ("latency_ms", "fwd_", "train_")
EXPONENT_COLUMNS = [
    "variant",
    "metric",
    "column",
    "fitted_exponent",
    "fit_from",
    "fit_to",
    "theory",
    "points",
    "note",
]


# ---- tables as CSV (pandas) ----


def csv_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of every row, in the order they first appear."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    return cols


def _csv_cell(col: str, v: Any) -> Any:
    if isinstance(v, float) and col in FULL_PRECISION:
        return repr(v)
    return fmt.csv_cell(v)


def write_rows(
    rows: list[dict[str, Any]],
    path: Path,
    cols: list[str] | None = None,
    *,
    cell: Any = None,
    lineterminator: str = "\n",
) -> None:
    """A CSV file of ``rows`` with pandas: missing cells empty; each cell written as
    ``cell(column, value)`` (default: floats to 6 significant digits, GiB to every digit)."""
    import pandas as pd

    cols = cols if cols is not None else csv_columns(rows)
    cell = cell or _csv_cell
    cells = [[cell(c, row.get(c)) for c in cols] for row in rows]
    table = pd.DataFrame(cells, columns=cols, dtype=object)
    table.to_csv(path, index=False, lineterminator=lineterminator)


def write_csv(points: list[Point], path: Path) -> None:
    """``scaling.csv`` (also ``profile --csv``): one row per variant and length."""
    write_rows([p.row for p in points], path)


def parse_cell(text: str) -> Any:
    """A CSV cell as the value it was written from: int, float, bool or text."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV file written by :func:`write_rows`; empty cells are left out."""
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [
        {k: parse_cell(v) for k, v in row.items() if v != ""}
        for row in table.to_dict(orient="records")
    ]


def read_points(path: Path) -> list[Point]:
    """The points of a ``scaling.csv``."""
    return [
        Point(str(r["variant"]), int(r["seq_len"]), str(r.get("status", "ok")), r)
        for r in read_rows(path)
    ]


# ---- fits and plots ----


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
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        if p.variant == variant and p.status == "ok" and ok:
            xs.append(p.seq_len)
            ys.append(float(v))
    return xs, ys


def _theory(points: list[Point], variant: str) -> Any:
    return next(
        (
            p.row["flop_exponent_theory"]
            for p in points
            if p.variant == variant and "flop_exponent_theory" in p.row
        ),
        None,
    )


#: no exponent is fitted from fewer points than this (two points always lie on a line)
MIN_FIT_POINTS = 3
#: how each plotted metric's axis reads: the unit its ticks carry (fmt.metric_axis)
AXIS_UNITS = {"flops": "FLOP", "mixing": "FLOP", "memory": "GiB", "latency": "ms"}


def fit_points(xs: list[int], ys: list[float]) -> tuple[list[int], list[float]]:
    """The points an exponent is fitted over: the upper half of the valid points, at least
    :data:`MIN_FIT_POINTS` of them; none when fewer are valid."""
    valid = [(x, y) for x, y in zip(xs, ys, strict=True) if y and y > 0 and math.isfinite(y)]
    if len(valid) < MIN_FIT_POINTS:
        return [], []
    ux, uy = upper_fit_points([x for x, _ in valid], [y for _, y in valid])
    if len(ux) >= MIN_FIT_POINTS:
        return ux, uy
    return [x for x, _ in valid[-MIN_FIT_POINTS:]], [y for _, y in valid[-MIN_FIT_POINTS:]]


def fit_exponents(points: list[Point], variants: list[str], metrics: list[str]) -> list[dict]:
    """Per variant and metric: the log-log slope over the upper half of the measured lengths
    (at least :data:`MIN_FIT_POINTS`; with fewer valid points, no slope and a note)."""
    out = []
    for v in variants:
        theory = _theory(points, v)
        for m in metrics:
            col = metric_column(points, m)
            if col is None:
                continue
            sx, sy = series(points, v, col)
            xs, ys = fit_points(sx, sy)
            few = f"too few points ({len(sx)} < {MIN_FIT_POINTS})" if not xs else ""
            out.append(
                {
                    "variant": v,
                    "metric": m,
                    "column": col,
                    "fitted_exponent": loglog_slope(xs, ys) if xs else None,
                    "fit_from": xs[0] if xs else None,
                    "fit_to": xs[-1] if xs else None,
                    "theory": theory if m in SLOPE_FROM_THEORY else None,
                    "points": len(xs),
                    "note": few,
                }
            )
    return out


def _fit_label(variant: str, fit: dict | None, n: int) -> str:
    """'softmax  T^2.00 (6 pts)' (the fitted slope and the points it is fitted over), or
    'perceiver-ar  (2 pts: too few to fit)'."""
    name = fmt.plot_text(variant)
    if fit is None:
        return name
    if fit["fitted_exponent"] is None:
        return f"{name}  ({n} pts: too few to fit)"
    return f"{name}  $T^{{{fit['fitted_exponent']:.2f}}}$ ({fit['points']} pts)"


def _guides(ax: Any, lines: dict[float, list[tuple[int, int, float]]]) -> None:
    """One thin grey dotted guide per reference slope, through the geometric mean of the last
    points (x :data:`REF_OFFSET`) of the variants that have it, over their common span."""
    for slope, ends in sorted(lines.items()):
        lo = min(e[0] for e in ends)
        hi = max(e[1] for e in ends)
        y0 = REF_OFFSET * math.exp(sum(math.log(e[2]) for e in ends) / len(ends))
        xs = [lo, hi]
        ax.plot(xs, [y0 * (x / hi) ** slope for x in xs], ":", color="0.45", lw=0.9,
                label=f"guide: slope {slope:g}", zorder=1)  # fmt: skip


def plot_metric(
    points: list[Point],
    variants: list[str],
    metric: str,
    path: Path,
    fits: list[dict] | None = None,
) -> Any:
    """One log-log plot: a line per variant (its fitted slope and point count in the legend)
    and, grey and dotted, one guide per theoretical slope (the FLOP exponent for FLOPs and
    latency; slope 1 for memory), drawn only for variants with enough points to fit. Returns
    the figure (closed, saved to ``path``), or None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = metric_column(points, metric)
    if col is None:
        return None
    fits = fits if fits is not None else fit_exponents(points, variants, [metric])
    fit_of = {f["variant"]: f for f in fits if f["metric"] == metric}
    style = fmt.styles(variants)
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=120, layout="constrained")
    guides: dict[float, list[tuple[int, int, float]]] = {}
    drawn = False
    for v in variants:
        xs, ys = series(points, v, col)
        if not xs:
            continue
        label = _fit_label(v, fit_of.get(v), len(xs))
        ax.plot(xs, ys, "-", label=label, markersize=4, lw=1.2, **style[v].line())
        slope = _theory(points, v) if metric in SLOPE_FROM_THEORY else 1.0
        if slope and len(xs) >= MIN_FIT_POINTS:
            guides.setdefault(float(slope), []).append((xs[0], xs[-1], ys[-1]))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    _guides(ax, guides)
    _axes(ax, metric, col, bool(guides))
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path)
    plt.close(fig)
    return fig


def _axes(ax: Any, metric: str, col: str, guides: bool) -> None:
    """Log T on x (powers of two), the metric's unit on a log y axis, the title."""
    ax.set_xscale("log", base=2)
    unit = AXIS_UNITS[metric] if col == PLOTS[metric][0] else ("B" if "bytes" in col else "")
    if not fmt.metric_axis(ax, "y", unit):
        ax.set_yscale("log")
    label = PLOTS[metric][1] if col == PLOTS[metric][0] else col
    ax.set_xlabel("sequence length T (tokens)")
    ax.set_ylabel(re.sub(r", (GiB|ms)\b", "", label))
    guide = "theoretical FLOP exponent" if metric in SLOPE_FROM_THEORY else "slope 1"
    second = (
        f"dotted grey: {guide} guides, x{REF_OFFSET} below the variants' last points"
        if guides
        else f"warning: no slope fitted, no guide drawn (fewer than {MIN_FIT_POINTS} points)"
    )
    ax.set_title(
        f"{metric} vs T (legend: fitted slope over the upper half, ≥ {MIN_FIT_POINTS} points)"
        f"\n{second}",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)


# ---- summary.md ----


def _text(v: Any) -> str:
    """A summary cell: whole numbers in SI, other numbers to 3 significant digits."""
    if isinstance(v, bool) or v is None or v == "":
        return "" if v is None else str(v)
    if isinstance(v, int):
        return fmt.si(v)
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
                cells.append(_text(p.row[col]))
            else:
                status = p.row.get("latency_status", "") if col.startswith(SKIPPABLE) else ""
                cells.append("skipped" if status and status != "ok" else "")
        lines.append(f"| {T:,} | " + " | ".join(cells) + " |")
    return lines


def _header(env: dict[str, Any], profile: dict[str, Any], command: str) -> list[str]:
    return [
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


def _fits_section(fits: list[dict]) -> list[str]:
    if not fits:
        return []
    md = [
        "## Fitted exponents",
        "",
        "Least-squares slope of log(metric) vs log(T) over the upper half of the lengths "
        f'measured, at least {MIN_FIT_POINTS} points (fewer: no slope, "too few points"); '
        "*theory*: the variant's asymptotic FLOP exponent (memory has none: its "
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
        if f["fit_from"]:
            rng = f"{f['fit_from']:,} – {f['fit_to']:,} ({f['points']} points)"
        else:
            rng = f.get("note") or "too few points"
        md.append(f"| {f['variant']} | {f['metric']} | {fe} | {_text(f['theory'])} | {rng} |")
    md.append("")
    return md


def _tables(
    points: list[Point], variants: list[str], metrics: list[str], plots: dict[str, str]
) -> list[str]:
    md: list[str] = []
    for metric, title, col in SECTIONS:
        if metric not in metrics or not any(col in p.row for p in points):
            continue
        md += [f"## {title}", "", *pivot_table(points, variants, col), ""]
        if metric in plots and col == PLOTS[metric][0]:
            md += [f"![{metric}]({plots[metric]})", ""]
    for metric, name in plots.items():
        if f"({name})" not in "\n".join(md):
            md += [f"![{metric}]({name})", ""]
    return md


def _skipped(points: list[Point], warnings: list[str]) -> list[str]:
    md: list[str] = []
    problems = [p for p in points if p.status != "ok"]
    skipped = [p for p in points if p.status == "ok" and p.row.get("latency_status", "ok") != "ok"]
    if problems or skipped:
        md += ["## Skipped", ""]
        md += [f"- {p.variant} at T = {p.seq_len:,}: {p.row.get('note', '')}" for p in problems]
        md += [
            f"- {p.variant} at T = {p.seq_len:,}: latency {p.row['latency_status']}"
            for p in skipped
        ]
        md.append("")
    if warnings:
        md += ["## Counter warnings", ""] + [f"- {w}" for w in warnings] + [""]
    return md


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
    warnings: list[str] | None = None,
) -> None:
    """``summary.md``: the command and machine, the fitted exponents, a table per quantity."""
    warns = sorted(
        set(warnings if warnings is not None else [w for p in points for w in p.warnings])
    )
    md = _header(env, profile, command) + _fits_section(fits)
    md += _tables(points, variants, metrics, plots) + _skipped(points, warns)
    (out / "summary.md").write_text("\n".join(md))


# ---- the report ----


def measured_metrics(points: list[Point]) -> list[str]:
    """The plotted metrics of a sweep, from the columns it wrote: flops, mixing, memory,
    latency (mixing, the token-mixing FLOPs, is the term the theory's exponent is about)."""
    order = [
        m for m in ("flops", "memory", "latency") if any(MEASURED_BY[m] in p.row for p in points)
    ]
    if "flops" in order:
        order.insert(1, "mixing")
    return order


def _recorded_command(out: Path, saved: dict[str, Any]) -> str:
    """The command that made the report: env.json's, or an older summary.md's."""
    if saved.get("command"):
        return str(saved["command"])
    old = out / "summary.md"
    found = re.search(r"^Command: `(.*)`$", old.read_text(), re.M) if old.exists() else None
    return found.group(1) if found else ""


def draw_report(out: Path) -> dict[str, Any]:
    """Plots, ``exponents.csv`` and ``summary.md`` from ``out/scaling.csv`` (and ``env.json``
    if present): no model is built, nothing is measured again."""
    points = read_points(out / "scaling.csv")
    env_file = out / "env.json"
    saved = json.loads(env_file.read_text()) if env_file.exists() else {}
    variants = list(dict.fromkeys(p.variant for p in points))
    metrics = measured_metrics(points)
    fits = fit_exponents(points, variants, metrics)
    plots = {}
    for m in metrics:
        name = f"{m}.png"
        if plot_metric(points, variants, m, out / name, fits) is not None:
            plots[m] = name
    write_rows(fits, out / "exponents.csv", EXPONENT_COLUMNS)
    write_summary(
        out,
        points,
        variants,
        metrics,
        fits,
        plots,
        saved.get("environment", {}),
        saved.get("profile", {}),
        _recorded_command(out, saved),
        warnings=list(saved.get("warnings", [])),
    )
    return {"out": str(out), "plots": plots, "fits": fits}


def write_report(
    out: Path,
    points: list[Point],
    env: dict[str, Any],
    profile: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    """Save ``scaling.csv`` and ``env.json`` into ``out`` and draw the report from them."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(points, out / "scaling.csv")
    warnings = sorted({w for p in points for w in p.warnings})
    saved = {"environment": env, "profile": profile, "command": command, "warnings": warnings}
    (out / "env.json").write_text(json.dumps(saved, indent=2))
    return draw_report(out)
