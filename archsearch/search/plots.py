"""The search report's figures: the Pareto front (a staircase), its pairwise projections, the
hypervolume history, the learning curves with the halving rungs, and parameter importances.

Every family (label) gets one colour and marker (:func:`archsearch.fmt.styles`), the same in
every figure of a report and listed in every legend; costs sit on log axes whose ticks carry
their unit ('10 MFLOP', '1 GiB', '5 ms'); quality is on y, costs on x, in objective order. A
figure drawn from too few points says so in its title (:data:`MIN_TRIALS_IMPORTANCES`,
:data:`MIN_TRIALS_HV`). See docs/search.md, "Reports".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch import fmt
from archsearch.metrics import Metric, get_metric, is_metric
from archsearch.search.results import TrialRecord

#: parameter importances from fewer complete trials than this carry a warning
MIN_TRIALS_IMPORTANCES = 10
#: a hypervolume history over fewer feasible complete trials than this carries a warning
MIN_TRIALS_HV = 3
#: what an axis says a metric is (its unit is on the ticks or after the name)
NAMES = {
    "params": "parameters",
    "flops_fwd": "forward FLOPs per window",
    "flops_train": "training FLOPs per window",
    "decode_state_bytes": "decode state after a window",
    "receptive_field": "receptive field",
    "peak_memory_gib": "training-step peak memory",
    "latency_ms": "forward latency",
    "decode_ms": "decode latency per token",
    "bits_per_byte": "held-out bits per byte",
    "perplexity": "held-out perplexity",
    "accuracy": "held-out accuracy",
    "loss": "held-out loss",
}
#: metrics measured on one window of seq_len tokens: their axis names T
PER_WINDOW = frozenset({"flops_fwd", "flops_train", "decode_state_bytes", "receptive_field"})


def _metric(name: str) -> Metric | None:
    return get_metric(name) if is_metric(name) else None


def is_cost(name: str) -> bool:
    """A profiled metric (cost, memory, latency): drawn on x, on a log axis."""
    m = _metric(name)
    return m is not None and m.kind == "profiled"


def axis_label(name: str, *, seq_len: Any = None, direction: str | None = None) -> str:
    """'forward FLOPs per window (T = 256), lower is better' (a cost: its ticks carry the unit)
    or 'held-out bits per byte (bit/byte), lower is better'."""
    m = _metric(name)
    text = NAMES.get(name, name)
    if name in PER_WINDOW and seq_len:
        text += f" (T = {seq_len})"
    elif m is not None and m.unit and not is_cost(name):
        text += f" ({m.unit})"
    if direction:
        text += f", {'lower' if direction == 'minimize' else 'higher'} is better"
    return text


def unit_axis(ax: Any, axis: str, name: str, values: Sequence[float]) -> None:
    """A cost on a log axis with unit ticks (all values positive); a quality stays linear."""
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    m = _metric(name)
    if m is None or not is_cost(name) or not vals or min(vals) <= 0:
        return
    fmt.metric_axis(ax, axis, m.unit)


def plot_order(objectives: Sequence[str]) -> list[int]:
    """Objective indices in drawing order: costs first (x), then quality (y, or z in 3-D),
    each in objective order."""
    idx = range(len(objectives))
    return [i for i in idx if is_cost(objectives[i])] + [
        i for i in idx if not is_cost(objectives[i])
    ]


def pairs(objectives: Sequence[str]) -> list[tuple[int, int]]:
    """The 2-D projections of three objectives as (x, y) indices: every pair with a quality on
    y first (costs on x in objective order), then the cost-cost pairs."""
    order = plot_order(objectives)
    out = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    return sorted(out, key=lambda p: is_cost(objectives[p[1]]))


def staircase(
    front: Sequence[tuple[float, float]], x_direction: str
) -> tuple[list[float], list[float], str]:
    """The front's (x, y) points sorted by x and the ``where=`` of ``ax.step`` that draws the
    boundary of what they dominate: a smaller-is-better x keeps each point's y until the next
    point ('post'); a larger-is-better x reaches the next point's y at once ('pre')."""
    pts = sorted(front)
    return [p[0] for p in pts], [p[1] for p in pts], "post" if x_direction == "minimize" else "pre"


def step_vertices(
    xs: Sequence[float], ys: Sequence[float], where: str
) -> list[tuple[float, float]]:
    """The vertices ``ax.step(xs, ys, where=where)`` draws (axis-parallel segments only)."""
    out = [(xs[0], ys[0])]
    for i in range(1, len(xs)):
        corner = (xs[i], ys[i - 1]) if where == "post" else (xs[i - 1], ys[i])
        out += [corner, (xs[i], ys[i])]
    return out


def _label_handles(used: dict[str, fmt.Style]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], ls="none", markersize=7, label=fmt.plot_text(lab), **s.line())
        for lab, s in used.items()
    ]


def _status_handles(kinds: set[str]) -> list[Any]:
    from matplotlib.lines import Line2D

    handles = []
    if "front" in kinds:
        line = "staircase" in kinds
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                marker="o",
                markerfacecolor="none",
                markersize=10,
                ls="-" if line else "none",
                lw=0.9,
                label="Pareto front (ringed; staircase)" if line else "Pareto front (ringed)",
            )
        )
    if "stopped" in kinds:
        handles.append(
            Line2D(
                [],
                [],
                color="0.3",
                marker="o",
                markerfacecolor="none",
                ls="none",
                alpha=0.6,
                label="stopped early (hollow: value at its last rung)",
            )
        )
    if "infeasible" in kinds:
        handles.append(Line2D([], [], color="0.55", marker="x", ls="none", label="infeasible"))
    return handles


def legend(ax: Any, used: dict[str, fmt.Style], kinds: set[str], **kw: Any) -> None:
    """Every family drawn (complete or stopped) and every kind of point, listed once."""
    handles = _label_handles(dict(sorted(used.items()))) + _status_handles(kinds)
    if handles:
        ax.legend(handles=handles, fontsize=8, **kw)


def front_title(data: Any, front: list[TrialRecord], what: str, budget: str) -> str:
    return (
        f"{fmt.plot_text(data.name)}: {what} ({len(front)} of {len(data.records)} trials on "
        f"the front)\n{budget}"
    )


def save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    if not fig.get_layout_engine():
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- the Pareto front ----


def stopped_value(r: TrialRecord) -> float | None:
    """A stopped trial's quality at its last rung (the task's headline metric)."""
    if r.outcome != "stopped" or not r.fidelity:
        return None
    v = r.fidelity[-1].get("value")
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def seq_len_of(data: Any) -> Any:
    """The study's window length T (from its stored space), or None."""
    return (data.settings.get("space") or {}).get("seq_len")


def _label(data: Any, i: int) -> str:
    return axis_label(data.objectives[i], seq_len=seq_len_of(data), direction=data.directions[i])


def _points_2d(data: Any, x: int, y: int) -> list[tuple[TrialRecord, float, float, str]]:
    """(trial, x, y, kind) for every trial with both values: complete ones (kind 'complete' or
    'infeasible'), and stopped ones at their last rung's quality when one axis is the quality
    and the other a cost it has."""
    mx, my = data.objectives[x], data.objectives[y]
    out = []
    for r in data.records:
        if r.outcome == "complete" and r.values:
            kind = "complete" if r.feasible else "infeasible"
            out.append((r, r.values[mx], r.values[my], kind))
            continue
        v = stopped_value(r)
        cost = r.metrics.get(mx)
        if v is None or not is_cost(mx) or is_cost(my) or not isinstance(cost, (int, float)):
            continue
        out.append((r, float(cost), v, "stopped"))
    return out


def scatter_2d(
    ax: Any, data: Any, front: list[TrialRecord], style: dict[str, fmt.Style], xy: tuple[int, int]
) -> tuple[dict[str, fmt.Style], set[str]]:
    """One 2-D panel: trials by family, the front ringed (and, for two objectives, joined as a
    staircase); returns the families and kinds of point drawn (for the legend)."""
    x, y = xy
    used: dict[str, fmt.Style] = {}
    kinds: set[str] = set()
    pts = _points_2d(data, x, y)
    for r, vx, vy, kind in pts:
        kinds.add(kind)
        if kind == "infeasible":
            ax.scatter(vx, vy, marker="x", color="0.55", s=36, zorder=2)
            continue
        s = used.setdefault(r.label, style[r.label])
        kw = s.points() if kind == "complete" else {**s.points(), "facecolors": "none"}
        ax.scatter(
            vx,
            vy,
            s=46 if kind == "complete" else 30,
            zorder=3,
            alpha=1.0 if kind == "complete" else 0.55,
            **kw,
        )
    on_front = [
        (r.values[data.objectives[x]], r.values[data.objectives[y]], r.number) for r in front
    ]
    if on_front:
        kinds.add("front")
        fx, fy = [p[0] for p in on_front], [p[1] for p in on_front]
        ax.scatter(fx, fy, s=110, facecolors="none", edgecolors="black", linewidths=1.1, zorder=4)
        if len(data.objectives) == 2 and len(on_front) > 1:
            sx, sy, where = staircase([(a, b) for a, b, _ in on_front], data.directions[x])
            ax.step(sx, sy, where=where, color="black", lw=0.9, zorder=1)
            kinds.add("staircase")
        for a, b, num in on_front:
            ax.annotate(f"#{num}", (a, b), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xlabel(_label(data, x))
    ax.set_ylabel(_label(data, y))
    unit_axis(ax, "x", data.objectives[x], [p[1] for p in pts])
    unit_axis(ax, "y", data.objectives[y], [p[2] for p in pts])
    ax.grid(True, alpha=0.3, which="major")
    return used, kinds


def plot_pareto(data: Any, front: list[TrialRecord], out: Path, budget: str) -> dict[str, str]:
    """``pareto.png`` (two objectives: a staircase front; three: a 3-D view) and, for three,
    ``pareto_pairs.png`` with the 2-D projections; returns the files written."""
    import matplotlib.pyplot as plt

    n = len(data.objectives)
    style = fmt.styles(sorted({r.label for r in data.records}))
    order = plot_order(data.objectives)
    if n == 1:
        return {}
    if n == 3:
        return {
            "pareto": str(_plot_3d(data, front, style, order, out / "pareto.png", budget)),
            "pareto_pairs": str(_plot_pairs(data, front, style, out / "pareto_pairs.png", budget)),
        }
    fig, ax = plt.subplots(figsize=(9.5, 5.5), layout="constrained")
    used, kinds = scatter_2d(ax, data, front, style, (order[0], order[1]))
    legend(ax, used, kinds, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(front_title(data, front, "Pareto front", budget), fontsize=10)
    return {"pareto": str(save(fig, out / "pareto.png"))}


def _plot_pairs(
    data: Any, front: list[TrialRecord], style: dict[str, fmt.Style], path: Path, budget: str
) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), layout="constrained")
    used: dict[str, fmt.Style] = {}
    kinds: set[str] = set()
    for ax, xy in zip(axes, pairs(data.objectives), strict=True):
        u, k = scatter_2d(ax, data, front, style, xy)
        used.update(u)
        kinds |= k
    legend(fig, used, kinds, loc="outside right upper", frameon=False)
    fig.suptitle(
        f"{fmt.plot_text(data.name)}: pairwise projections (front of all three objectives, "
        f"ringed), {budget}",
        fontsize=11,
    )
    return save(fig, path)


def _plot_3d(
    data: Any,
    front: list[TrialRecord],
    style: dict[str, fmt.Style],
    order: list[int],
    path: Path,
    budget: str,
) -> Path:
    """Costs on x and y, quality on z; a log cost is drawn as its log10 with unit ticks."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    fig = plt.figure(figsize=(9.5, 7), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    names = [data.objectives[i] for i in order]
    logs = [is_cost(m) and all(r.values[m] > 0 for r in data.complete()) for m in names]

    def coords(r: TrialRecord) -> list[float]:
        return [
            math.log10(r.values[m]) if lg else r.values[m]
            for m, lg in zip(names, logs, strict=True)
        ]

    used: dict[str, fmt.Style] = {}
    kinds: set[str] = set()
    on_front = {r.number for r in front}
    for r in data.complete():
        if not r.feasible:
            kinds.add("infeasible")
            ax.scatter(*coords(r), marker="x", color="0.55", s=30)
            continue
        s = used.setdefault(r.label, style[r.label])
        ax.scatter(*coords(r), s=40, **s.points())
        if r.number in on_front:
            kinds.add("front")
            ax.scatter(*coords(r), s=100, facecolors="none", edgecolors="black", linewidths=1.1)
    for axis, m, lg, i in zip((ax.xaxis, ax.yaxis, ax.zaxis), names, logs, order, strict=True):
        axis.set_label_text(_label(data, i), fontsize=8)
        if not lg:
            axis.set_major_locator(MaxNLocator(4))
            continue
        vals = [r.values[m] for r in data.complete()]
        binary = get_metric(m).unit in ("B", "GiB")
        ticks = (fmt.pow2_ticks if binary else fmt.log_ticks)(min(vals), max(vals), 4)
        ticks = ticks or [min(vals), max(vals)]
        axis.set_major_locator(FixedLocator([math.log10(t) for t in ticks]))
        axis.set_major_formatter(FuncFormatter(lambda v, _p, m=m: get_metric(m).format(10**v)))
    ax.tick_params(labelsize=7)
    legend(fig, used, kinds, loc="outside right upper", frameon=False)
    ax.set_title(front_title(data, front, "Pareto front", budget), fontsize=10)
    return save(fig, path)


# ---- hypervolume, learning curves, importances ----


def hv_warning(data: Any, front: Sequence[TrialRecord] = ()) -> str:
    """The hypervolume figure's warning when too few feasible complete trials make its front,
    or when its front is one point (normalised, its hypervolume is 1 whatever it is)."""
    few = fmt.warn_few(len(data.complete(feasible=True)), MIN_TRIALS_HV, "feasible trials")
    if not few and len(front) == 1:
        return "warning: the front is one trial, so its normalised hypervolume is 1 by definition"
    return few


def importances_warning(data: Any) -> str:
    """The importances' warning when they are computed from too few complete trials."""
    return fmt.warn_few(len(data.complete()), MIN_TRIALS_IMPORTANCES, "complete trials")


def plot_hv(hv: list[float], path: Path, label: str = "", warning: str = "") -> Any:
    """The normalised hypervolume after each trial; returns the (closed) figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.step(range(len(hv)), hv, where="post", marker="o", ms=3)
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume (normalised objectives)")
    title = f"hypervolume of the feasible front after each trial\n{label}"
    ax.set_title(title + (f"\n{warning}" if warning else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    save(fig, path)
    return fig


def rung_lines(data: Any) -> list[tuple[int, float]]:
    """(rung, tokens) of every rung that all trials reached after the same number of tokens
    (an equal-tokens study); at equal compute each trial reaches a rung after its own count."""
    at: dict[int, set[float]] = {}
    for r in data.records:
        for f in r.fidelity:
            if isinstance(f.get("tokens"), (int, float)):
                at.setdefault(int(f["rung"]), set()).add(float(f["tokens"]))
    return [(k, min(v)) for k, v in sorted(at.items()) if max(v) <= 1.01 * min(v)]


def _curve(ax: Any, r: TrialRecord, pts: list[tuple[float, float]], s: fmt.Style) -> None:
    """One trial's curve: its family's colour, solid if it finished and dotted if stopped, its
    rung evaluations marked with the family's marker and its number at the end."""
    xs, ys = zip(*pts, strict=True)
    ax.plot(xs, ys, "-" if r.outcome == "complete" else ":", color=s.color, alpha=0.75, lw=1.1)
    for f in r.fidelity:
        x, y = f.get("tokens"), f.get("value")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x > 0:
            ax.plot(x, y, ls="none", markersize=6, markeredgecolor="black", **s.line())
    if r.outcome == "stopped":
        ax.plot(xs[-1], ys[-1], marker="v", color="black", markersize=5, ls="none")
    ax.annotate(
        f"#{r.number}",
        (xs[-1], ys[-1]),
        textcoords="offset points",
        xytext=(3, 0),
        fontsize=6,
        color=s.color,
    )


def plot_curves(data: Any, path: Path, budget: str) -> Any:
    """Quality against tokens for every trained trial, coloured by family; the halving rungs
    as vertical lines (equal tokens) and as black-edged markers where each trial was judged;
    returns the (closed) figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style = fmt.styles(sorted({r.label for r in data.records}))
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    by_number = {r.number: r for r in data.records}
    used: dict[str, fmt.Style] = {}
    for number, curve in sorted(data.curves.items()):
        pts = [(x, y) for x, y in curve if x > 0 and y is not None]
        r = by_number.get(number)
        if pts and r is not None:
            _curve(ax, r, pts, used.setdefault(r.label, style[r.label]))
    for rung, tokens in rung_lines(data):
        ax.axvline(tokens, color="0.4", lw=0.8, ls="--", zorder=0)
        ax.annotate(
            f"rung {rung}",
            (tokens, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            color="0.3",
        )
    ax.set_xscale("log")
    fmt.si_axis(ax, "x", "")
    metric = next((m for m in data.objectives if not is_cost(m)), None)
    ax.set_xlabel("training tokens")
    ax.set_ylabel(axis_label(metric) if metric else "held-out quality")
    ax.set_title(
        "learning curves: solid finished, dotted stopped by successive halving (▼);\n"
        f"black-edged markers: rung evaluations; dashed lines: rung budgets. {budget}",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3, which="major")
    handles = _label_handles(dict(sorted(used.items()))) + [
        Line2D([], [], color="0.3", ls="-", label="finished its full budget"),
        Line2D([], [], color="0.3", ls=":", marker="v", label="stopped (▼ where)"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save(fig, path)
    return fig


def plot_importances(
    imp: dict[str, dict[str, float]], path: Path, label: str = "", warning: str = ""
) -> Any:
    """One horizontal bar chart per objective; the warning (too few trials) in every title."""
    import matplotlib.pyplot as plt

    params = sorted({p for d in imp.values() for p in d})
    fig, axes = plt.subplots(
        1, len(imp), figsize=(5.5 * len(imp), 0.4 * len(params) + 2.2), layout="constrained"
    )
    axes = axes if len(imp) > 1 else [axes]
    for ax, (m, d) in zip(axes, imp.items(), strict=True):
        ax.barh(params, [d.get(p, 0.0) for p in params])
        title = f"importance for {m}\n{label}" + (f"\n{warning}" if warning else "")
        ax.set_title(title, fontsize=9, color="firebrick" if warning else "black")
        ax.invert_yaxis()
    save(fig, path)
    return fig
