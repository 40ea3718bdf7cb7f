"""``archsearch report A B``: two studies side by side (docs/search.md, "Reports").

Each source is anything ``archsearch report SOURCE`` accepts (a search folder, a study file or
URL, a saved report folder). The two studies must have the same objectives. Written to the
output folder:

- ``fronts.png``: both feasible Pareto fronts in one plot, as staircase lines (the boundary of
  what each front dominates), one colour and marker per study, every other feasible complete
  trial as a faint marker; a cost objective is on a log axis with SI units;
- ``pair.csv``: per study its trials, complete trials, front size, its hypervolume under the
  shared normalisation and under its own (raw numbers);
- ``pair.md``: the table, the shared ideal and reference point, what each study's trials were
  given (a warning when the budgets differ), and the command that made it.

The hypervolumes use ONE normalisation over both studies' feasible complete trials
(:func:`~archsearch.search.report.shared_normalisation`: the best value seen in either study
maps to 0, the worst pushed out by 10 % of the range to 1), so they compare directly; each
study's own report normalises by its own trials only, so its number does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch import fmt
from archsearch.errors import ConfigError
from archsearch.outputs import check_writable_dir, folder_name, refuse_overwrite
from archsearch.profiling.report import write_rows
from archsearch.search import plots
from archsearch.search.report import StudyData, budget_title, format_value, shared_normalisation
from archsearch.search.report_source import load_source
from archsearch.search.storage import redact

#: the files a comparison writes (an --out holding any of them is refused unless --force)
PRODUCTS = ("pair.md", "pair.csv", "fronts.png")
#: how the two studies are named in the table and the plot (their names may be the same)
SIDES = ("A", "B")


def objectives_of(data: StudyData) -> list[tuple[str, str]]:
    return list(zip(data.objectives, data.directions, strict=True))


def _words(data: StudyData) -> str:
    return ", ".join(f"{m} ({d})" for m, d in objectives_of(data))


def aligned(a: StudyData, b: StudyData, source_b: str) -> StudyData:
    """``b`` with its objectives in ``a``'s order; a one-line :class:`ConfigError` naming both
    studies and their objectives when they differ."""
    if sorted(objectives_of(a)) != sorted(objectives_of(b)):
        raise ConfigError(
            "B",
            source_b,
            f"a study with the objectives of A (study {a.name!r}: {_words(a)})",
            got=f"study {b.name!r} with objectives {_words(b)}",
        )
    if objectives_of(a) == objectives_of(b):
        return b
    by_metric = {o["metric"]: o for o in b.settings["objectives"]}
    settings = {**b.settings, "objectives": [by_metric[m] for m in a.objectives]}
    out = StudyData(b.name, settings, b.records, b.curves)
    out.seeds = b.seeds
    return out


def compare_rows(studies: list[StudyData], sources: list[str]) -> list[dict[str, Any]]:
    """One row per study: counts, front size and the hypervolume under the shared and under
    its own normalisation."""
    norm = shared_normalisation(studies)
    rows = []
    for side, d, src in zip(SIDES, studies, sources, strict=True):
        shared = d.hypervolume_history(norm) if norm else []
        own = d.hypervolume_history()
        rows.append(
            {
                "side": side,
                "study": d.name,
                "source": redact(src),
                "budget": budget_title(d),
                "trials": len(d.records),
                "complete": len(d.complete()),
                "front": len(d.front()),
                "hypervolume_shared": shared[-1] if shared else 0.0,
                "hypervolume_own": own[-1] if own else 0.0,
            }
        )
    return rows


def write_pair(
    source_a: str,
    source_b: str,
    *,
    studies: tuple[str | None, str | None] = (None, None),
    out: Path | None = None,
    force: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Compare the studies of ``source_a`` and ``source_b`` into ``out``; what was written."""
    a = load_source(source_a, study=studies[0])
    b = aligned(a, load_source(source_b, study=studies[1]), source_b)
    out = out or Path("runs/report") / f"{folder_name(a.name)}-vs-{folder_name(b.name)}"
    check_writable_dir(out, "--out")
    refuse_overwrite(out, "--out", PRODUCTS, force=force)
    out.mkdir(parents=True, exist_ok=True)
    rows = compare_rows([a, b], [source_a, source_b])
    files = {"csv": str(out / "pair.csv")}
    write_rows(rows, out / "pair.csv", list(rows[0]))
    if len(a.objectives) >= 2:
        files["fronts"] = str(plot_fronts([a, b], out / "fronts.png"))
    (out / "pair.md").write_text(pair_markdown([a, b], rows, command))
    files["report"] = str(out / "pair.md")
    return {"out": str(out), "files": files, "studies": rows}


def pair_markdown(studies: list[StudyData], rows: list[dict[str, Any]], command: str) -> str:
    """The comparison as markdown: the hypervolume table and what it was measured against."""
    a, b = studies
    norm = shared_normalisation(studies)
    md = [
        f"# A: {a.name} vs B: {b.name}",
        "",
        "Both studies' feasible Pareto fronts, and each front's hypervolume with ONE "
        "normalisation over both studies' feasible complete trials: each objective is mapped "
        "so that the best value either study reached is 0 and the worst, pushed out by 10 % of "
        "its range, is 1. Higher is better, and the two numbers compare directly (the "
        "'own' column is each report's number, normalised by its own trials: it does not).",
        "",
        "| study | trials | complete | on the front | hypervolume (shared) | hypervolume (own) "
        "| budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['side']}: {r['study']} | {r['trials']} | {r['complete']} | {r['front']} | "
            f"{r['hypervolume_shared']:.4f} | {r['hypervolume_own']:.4f} | {r['budget']} |"
        )
    md.append("")
    if rows[0]["budget"] != rows[1]["budget"]:
        md += [
            "**Warning:** the studies' trials were given different budgets "
            f"({rows[0]['budget']}; {rows[1]['budget']}): the fronts compare models trained "
            "differently, not only the searches.",
            "",
        ]
    tasks = [d.settings.get("task") or {} for d in studies]
    if tasks[0] != tasks[1]:
        md += [
            "**Warning:** the studies measure quality differently (task "
            + "; ".join(
                f"{side}: {t.get('name', '?')} {t.get('options') or {}}"
                for side, t in zip(SIDES, tasks, strict=True)
            )
            + "): a different held-out size or stride scores different bytes, so their quality "
            "values are not measured on the same text. For a like-for-like comparison, give "
            "both the same task options (e.g. `-O eval_tokens=N`).",
            "",
        ]
    if norm is not None:
        ideal, ref = norm
        md += ["| objective | direction | ideal (→ 0) | reference (→ 1) |", "|---|---|---|---|"]
        for i, (m, d) in enumerate(objectives_of(a)):
            sign = 1 if d == "minimize" else -1
            md.append(
                f"| {m} | {d} | {format_value(m, sign * ideal[i])} | "
                f"{format_value(m, sign * ref[i])} |"
            )
        md.append("")
    if len(a.objectives) >= 2:
        md += ["![both fronts](fronts.png)", ""]
    md += ["Sources: " + "; ".join(f"{r['side']}: `{r['source']}`" for r in rows), ""]
    if command:
        md += ["Made by:", "", f"    {redact(command)}", ""]
    return "\n".join(md)


# ---------------------------------------------------------------------------------------------
# the plot: both fronts as staircases


def _axis(ax: Any, data: StudyData, i: int, which: str, values: list[float]) -> None:
    """The search report's axis: its label (with T for a per-window cost) and, for a cost, a
    log axis with unit ticks (118 MFLOP)."""
    name, direction = data.objectives[i], data.directions[i]
    label = plots.axis_label(name, seq_len=plots.seq_len_of(data), direction=direction)
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(label)
    plots.unit_axis(ax, which, name, values)


def plot_fronts(studies: list[StudyData], path: Path) -> Path:
    """``fronts.png``: :func:`fronts_figure`, saved."""
    import matplotlib.pyplot as plt

    fig = fronts_figure(studies)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fronts_figure(studies: list[StudyData]) -> Any:
    """Both studies' fronts in one figure: a staircase per study (the boundary of what its
    front dominates on the two plotted objectives), colour and marker per study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xi, yi = plots.plot_order(studies[0].objectives)[:2]  # a cost on x, quality on y
    names, dirs = studies[0].objectives, studies[0].directions
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs_all: list[float] = []
    ys_all: list[float] = []
    for k, (side, d) in enumerate(zip(SIDES, studies, strict=True)):
        colour, marker = fmt.style_of(k).color, fmt.style_of(k).marker
        done = d.complete(feasible=True)
        xs = [r.values[names[xi]] for r in done]
        ys = [r.values[names[yi]] for r in done]
        ax.scatter(xs, ys, color=colour, marker=marker, alpha=0.25, s=22)
        front = [(r.values[names[xi]], r.values[names[yi]]) for r in d.front()]
        xs_all += xs
        ys_all += ys
        if not front:
            continue
        fx, fy, where = plots.staircase(front, dirs[xi])
        ax.plot(
            fx,
            fy,
            drawstyle=f"steps-{where}",
            color=colour,
            lw=1.6,
            marker=marker,
            ms=7,
            label=f"{side}: {fmt.plot_text(d.name)} ({len(front)} on the front)",
        )
    _axis(ax, studies[0], xi, "x", xs_all)
    _axis(ax, studies[0], yi, "y", ys_all)
    ax.grid(True, alpha=0.3, which="both")
    titles = {budget_title(d) for d in studies}
    ax.set_title(
        f"A: {fmt.plot_text(studies[0].name)} vs B: {fmt.plot_text(studies[1].name)}: "
        "Pareto fronts\n" + "; ".join(sorted(titles))
    )
    fmt.legend(ax, fontsize=8, loc="best")
    return fig
