"""The search report's figures, inspected through their matplotlib objects: a staircase front,
a legend entry for every family (stopped ones too), unit-bearing log cost axes, one consistent
axis order for three objectives, the rungs on the learning curves, warnings below a minimum
sample; and one distinct colour + marker per label however many labels there are."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from archsearch import fmt  # noqa: E402
from archsearch.search import plots  # noqa: E402
from archsearch.search.report import StudyData  # noqa: E402
from archsearch.search.results import TrialRecord  # noqa: E402

LABELS = ("softmax", "hsm", "ecp", "s2attn")


def _settings(objectives: list[tuple[str, str]]) -> dict:
    return {
        "objectives": [{"metric": m, "direction": d} for m, d in objectives],
        "space": {"seq_len": 256},
        "train": {"budget_tokens": 40_000},
        "halving": {"eta": 3, "rungs": 2},
    }


def _data(n: int = 8, three: bool = False) -> StudyData:
    objectives = [("bits_per_byte", "minimize"), ("flops_fwd", "minimize")]
    if three:
        objectives.append(("latency_ms", "minimize"))
    records, curves = [], {}
    for i in range(n):
        flops = 1e7 * 2 ** (i % 6)
        bpb = 3.0 - 0.1 * math.log2(flops / 1e7) + 0.05 * (i % 3)
        lat = 1.0 + (i * 7 % 5)
        stopped = i % 4 == 3
        rung0 = {"rung": 0, "tokens": 13_333, "value": bpb + 0.3, "promoted": not stopped}
        fidelity = [rung0] if stopped else [rung0, {"rung": 1, "tokens": 40_000, "value": bpb}]
        values = {"bits_per_byte": bpb, "flops_fwd": flops, "latency_ms": lat}
        records.append(
            TrialRecord(
                number=i,
                state="PRUNED" if stopped else "COMPLETE",
                outcome="stopped" if stopped else "complete",
                reason="",
                # the last label has only stopped trials: it still needs a legend entry
                label="combiner" if stopped and i == n - 1 else LABELS[i % len(LABELS)],
                params={},
                values={} if stopped else {m: values[m] for m, _ in objectives},
                metrics=values,
                fidelity=fidelity,
            )
        )
        curves[i] = [(1000.0 * k, bpb + 1.0 / k) for k in range(1, 41 if not stopped else 14)]
    return StudyData("study", _settings(objectives), records, curves)


def test_no_two_of_thirty_labels_share_colour_and_marker() -> None:
    labels = [f"family-{i}" for i in range(30)]
    keys = [s.key for s in fmt.styles(labels).values()]
    assert len(set(keys)) == 30
    colours = [s.color for s in fmt.styles(labels).values()]
    assert len(set(colours[:18])) == 18  # the first 18 labels differ in colour alone
    assert len({fmt.style_of(i).key for i in range(252)}) == 252


def test_the_same_label_looks_the_same_in_every_figure() -> None:
    a = fmt.styles(sorted(["b", "a", "c"]))
    b = fmt.styles(sorted(["c", "a", "b"]))
    assert {k: v.key for k, v in a.items()} == {k: v.key for k, v in b.items()}


def test_the_front_is_a_staircase() -> None:
    xs, ys, where = plots.staircase([(3.0, 1.0), (1.0, 3.0), (2.0, 2.0)], "minimize")
    assert where == "post"
    v = plots.step_vertices(xs, ys, where)
    assert v == [(1.0, 3.0), (2.0, 3.0), (2.0, 2.0), (3.0, 2.0), (3.0, 1.0)]
    # every segment is axis-parallel: no diagonal
    assert all(a[0] == b[0] or a[1] == b[1] for a, b in zip(v, v[1:], strict=False))
    assert plots.staircase([(1.0, 1.0)], "maximize")[2] == "pre"


def _pareto(tmp_path: Path, data: StudyData):  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    captured = []
    real = plots.save

    def keep(fig, path):  # type: ignore[no-untyped-def]
        captured.append(fig)
        return real(fig, path)

    plots.save = keep  # type: ignore[assignment]
    try:
        files = plots.plot_pareto(data, data.front(), tmp_path, "at equal tokens")
    finally:
        plots.save = real  # type: ignore[assignment]
    plt.close("all")
    return files, captured


def test_pareto_figure_staircase_legend_and_cost_axis(tmp_path: Path) -> None:
    data = _data()
    _, (fig,) = _pareto(tmp_path, data)
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_drawstyle().startswith("steps")]
    assert line.get_drawstyle() == "steps-post"
    path = line._get_transformed_path().get_fully_transformed_path().vertices  # noqa: SLF001
    assert all(
        math.isclose(a[0], b[0]) or math.isclose(a[1], b[1])
        for a, b in zip(path, path[1:], strict=False)
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for lab in {r.label for r in data.records}:
        assert lab in legend, (lab, legend)  # "combiner" has stopped trials only
    assert ax.get_xscale() == "log" and "forward FLOPs per window (T = 256)" in ax.get_xlabel()
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.endswith("FLOP") for t in ticks), ticks
    assert "bit/byte" in ax.get_ylabel()


def test_three_objectives_keep_one_axis_order(tmp_path: Path) -> None:
    data = _data(three=True)
    files, (_, pairs_fig) = _pareto(tmp_path, data)
    assert set(files) == {"pareto", "pareto_pairs"}
    xs = [ax.get_xlabel() for ax in pairs_fig.axes[:3]]
    ys = [ax.get_ylabel() for ax in pairs_fig.axes[:3]]
    # quality on y wherever it is drawn, the costs on x in objective order
    assert ys[0].startswith("held-out bits per byte") and ys[1].startswith("held-out bits")
    assert xs[0].startswith("forward FLOPs") and xs[1].startswith("forward latency")
    assert xs[2].startswith("forward FLOPs") and ys[2].startswith("forward latency")
    assert pairs_fig.get_layout_engine() is not None


def test_curves_distinguish_trials_and_mark_the_rungs(tmp_path: Path) -> None:
    data = _data()
    fig = plots.plot_curves(data, tmp_path / "curves.png", "at equal tokens")
    ax = fig.axes[0]
    vlines = [ln for ln in ax.get_lines() if list(ln.get_xdata()) in ([13_333, 13_333],)]
    assert vlines, "rung 0's budget is drawn as a vertical line"
    numbers = {t.get_text() for t in ax.texts}
    assert {f"#{i}" for i in range(8)} <= numbers and "rung 0" in numbers
    assert "bits per byte" in ax.get_ylabel()


def test_too_few_trials_warn_in_the_figure_and_the_report(tmp_path: Path) -> None:
    data = _data(n=3)
    warn = plots.importances_warning(data)
    assert "only 3 complete trials (fewer than 10)" in warn
    fig = plots.plot_importances({"bits_per_byte": {"lr": 0.7}}, tmp_path / "i.png", "", warn)
    assert "warning" in fig.axes[0].get_title()
    fig = plots.plot_hv([0.0, 0.5], tmp_path / "hv.png", "", plots.hv_warning(_data(n=2)))
    assert "fewer than 3" in fig.axes[0].get_title()
    assert plots.importances_warning(_data(n=16)) == ""
