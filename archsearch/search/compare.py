"""Comparing a few models over several seeds at one budget (``archsearch compare``).

Each model is trained with the same recipe (:mod:`archsearch.quality.train`) once per seed
``0..S-1`` (the seed sets the initialisation and the data order), at equal compute
(``budget_flops``) or equal tokens. Every run is a trial of an Optuna study (SQLite under the
output folder by default, or ``--storage``) with the model's name, config and seed as user
attributes, so running the same command again skips the (model, seed) pairs already finished and
trains the rest. The study records the task, window length, recipe and profile; re-opening it with
different ones is a one-line error. Runs go one after another in this process.

What it writes (docs/search.md, "Reports"): ``runs.csv`` (every model × seed), ``compare.csv``
(per model: mean, standard deviation, 95% t-interval, training FLOPs per window, and the paired
difference to the first model over the seeds both have, with its 95% interval), ``compare.png``
(quality against the training FLOPs spent, with the 95% intervals as error bars) and
``compare.md``. Everything is checked before anything trains: seeds >= 1, one budget, every model
buildable at the task's window length and a FLOPs budget of at least one optimizer step of each.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from archsearch import fmt
from archsearch.errors import ConfigError
from archsearch.model.config import ModelConfig, load_model_config_located, model_config_to_dict
from archsearch.profiling.profiles import Profile
from archsearch.quality.tasks import Task, get_task, make_task
from archsearch.quality.train import (
    CurvePoint,
    StepHook,
    TrainConfig,
    TrainResult,
    check_budget_fits,
    fewest_tokens,
    train,
    training_flops_per_window,
)
from archsearch.search.plots import axis_label
from archsearch.search.results import budget_label
from archsearch.search.stats import Summary, paired_difference, summarise
from archsearch.search.storage import open_storage, storage_url, study_names
from archsearch.search.study import check_same, jsonable

ATTR = "archsearch.compare"
"""the study user attribute holding what makes the runs comparable"""
_IDENTITY = ("task", "seq_len", "train", "profile")


@dataclass
class Entry:
    """One model of the comparison."""

    name: str
    cfg: ModelConfig
    source: str
    flops_per_window: int


@dataclass
class Comparison:
    """Everything a comparison needs, validated (nothing trained yet)."""

    models: list[Entry]
    task: Task
    task_options: dict[str, Any]
    train: TrainConfig
    profile: Profile
    seeds: int

    def record(self) -> dict[str, Any]:
        train = {k: v for k, v in dataclasses.asdict(self.train).items() if k != "seed"}
        return {
            "task": {"name": self.task.name, "options": jsonable(self.task_options)},
            "seq_len": self.task.seq_len,
            "train": jsonable({**train, "budget_mode": self.train.budget_mode}),
            "profile": jsonable(self.profile.to_dict()),
        }


def prepare(
    paths: list[Path],
    *,
    seeds: int,
    task: str = "lm",
    task_options: dict[str, Any] | None = None,
    seq_len: int | None = None,
    train_cfg: TrainConfig,
    profile: Profile,
    sets: Sequence[str] = (),
) -> Comparison:
    """Load and check every model against the task, its window length and the budget."""
    if seeds < 1:
        raise ConfigError("--seeds", seeds, "an integer >= 1")
    if not paths:
        raise ConfigError("MODEL", None, "at least one model YAML")
    loaded = [(p, load_model_config_located(p, sets)[0]) for p in paths]
    tcls = get_task(task, field="--task")
    if seq_len is None and not tcls.sets_seq_len:
        seq_len = loaded[0][1].max_seq_len
    options = dict(task_options or {})
    if seq_len is not None:
        tokens = fewest_tokens(train_cfg, seq_len, [cfg for _, cfg in loaded])
        options = tcls.comparable_options(options, seq_len, tokens)
    the_task = make_task(task, options, seq_len=seq_len)
    models: list[Entry] = []
    for path, cfg in loaded:
        name = cfg.name or path.stem
        if any(m.name == name for m in models):
            raise ConfigError("MODEL", str(path), f"models with different names ('{name}' twice)")
        the_task.check_model(cfg, source=str(path))
        try:
            check_budget_fits(train_cfg, the_task, cfg)
        except ConfigError as e:
            raise e.located(source=str(path)) from None
        models.append(Entry(name, cfg, str(path), training_flops_per_window(cfg, the_task)))
    return Comparison(models, the_task, options, train_cfg, profile, seeds)


def open_compare_study(comp: Comparison, storage: str | Path, name: str) -> optuna.Study:
    """Create the study of the runs, or load it after checking it was made with the same task,
    window length, recipe and profile, and the same config for every model name it has."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(storage)
    st = open_storage(url)
    record = comp.record()
    direction = "maximize" if comp.task.higher_is_better else "minimize"
    if name not in study_names(st):
        study = optuna.create_study(storage=st, study_name=name, direction=direction)
        study.set_user_attr(ATTR, record)
        return study
    study = optuna.load_study(study_name=name, storage=st)
    stored = study.user_attrs.get(ATTR)
    if stored is None:
        raise ConfigError("--study", name, "a study made by archsearch compare (this one was not)")
    diffs = [k for k in _IDENTITY if stored.get(k) != record.get(k)]
    if diffs:
        check_same({k: stored.get(k) for k in diffs}, {k: record[k] for k in diffs}, name)
    configs = {m.name: jsonable(model_config_to_dict(m.cfg)) for m in comp.models}
    for t in study.get_trials(deepcopy=False):
        model = t.user_attrs.get("model")
        if model in configs and t.user_attrs.get("config") != configs[model]:
            raise ConfigError(
                "MODEL",
                model,
                f"the config the study '{name}' trained under this name, or a new name or --out",
            )
    return study


def finished_runs(study: optuna.Study) -> dict[tuple[str, int], optuna.trial.FrozenTrial]:
    """The finished runs of the study by (model, seed): complete or diverged."""
    out = {}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("status") in ("completed", "diverged"):
            out[(t.user_attrs["model"], int(t.user_attrs["seed"]))] = t
    return out


RunHook = Callable[[str, int, str], None]
"""(model, seed, 'start' | 'skip' | 'done: <value>') for a progress display"""
EvalHook = Callable[[str, int, CurvePoint], None]
"""(model, seed, the evaluation just made) for a progress display"""


def run_all(
    comp: Comparison,
    study: optuna.Study,
    *,
    on_run: RunHook | None = None,
    on_step: StepHook | None = None,
    on_eval: EvalHook | None = None,
) -> bool:
    """Train every (model, seed) the study has not finished; False if a run was interrupted
    (the ones before it are stored; a re-run resumes)."""
    done = finished_runs(study)
    for seed in range(comp.seeds):
        for m in comp.models:
            if (m.name, seed) in done:
                if on_run is not None:
                    on_run(m.name, seed, "skip")
                continue
            if on_run is not None:
                on_run(m.name, seed, "start")
            shown = None if on_eval is None else functools.partial(on_eval, m.name, seed)
            res = train_one(comp, study, m, seed, on_step, on_eval=shown)
            if res.status == "interrupted":
                return False
            if on_run is not None:
                value = res.final.get(comp.task.metric, math.nan)
                on_run(m.name, seed, f"{res.status}: {comp.task.metric} {value:.4f}")
    return True


def train_one(
    comp: Comparison,
    study: optuna.Study,
    m: Entry,
    seed: int,
    on_step: StepHook | None = None,
    *,
    on_eval: Callable[[CurvePoint], None] | None = None,
) -> TrainResult:
    """Train model ``m`` with ``seed`` and store the run as one trial (with its evaluation
    curve: ``[training FLOPs spent, metric]`` at step 0 and each evaluation)."""
    trial = study.ask()
    trial.set_user_attr("model", m.name)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("config", jsonable(model_config_to_dict(m.cfg)))
    trial.set_user_attr("source", m.source)
    cfg = dataclasses.replace(comp.train, seed=seed)
    try:
        res = train(m.cfg, comp.task, cfg, comp.profile, on_step=on_step, on_eval=on_eval)
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    metric = comp.task.metric
    for key, value in (
        ("status", res.status),
        ("reason", res.reason),
        ("final", jsonable(res.final)),
        ("steps", res.steps),
        ("tokens", res.tokens_seen),
        ("flops_spent", res.flops_spent),
        ("flops_per_window", m.flops_per_window),
        ("params", res.params),
        ("train_seconds", round(res.train_seconds, 3)),
        ("eval_seconds", round(res.eval_seconds, 3)),
        ("wall_seconds", round(res.wall_seconds, 3)),
        ("curve", jsonable([[p.flops, p.metrics.get(metric)] for p in res.curve])),
    ):
        trial.set_user_attr(key, value)
    value = res.final.get(metric)
    if res.status == "completed" and value is not None and math.isfinite(value):
        study.tell(trial, value)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return res


def run_rows(comp: Comparison, study: optuna.Study) -> list[dict[str, Any]]:
    """One row per finished run of the comparison's models, in model then seed order."""
    done = finished_runs(study)
    rows = []
    for m in comp.models:
        for seed in range(comp.seeds):
            t = done.get((m.name, seed))
            if t is None:
                continue
            a = t.user_attrs
            rows.append(
                {
                    "model": m.name,
                    "seed": seed,
                    "status": a["status"],
                    comp.task.metric: a["final"].get(comp.task.metric),
                    **{f"eval_{k}": v for k, v in a["final"].items() if k != comp.task.metric},
                    "steps": a["steps"],
                    "tokens": a["tokens"],
                    "flops_spent": a["flops_spent"],
                    "train_seconds": a["train_seconds"],
                    "eval_seconds": a.get("eval_seconds"),
                    "wall_seconds": a.get("wall_seconds"),
                }
            )
    return rows


def model_rows(comp: Comparison, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: the seeds' statistics and the paired difference to the first model."""
    metric = comp.task.metric
    by_model: dict[str, dict[int, float]] = {m.name: {} for m in comp.models}
    spent: dict[str, list[float]] = {m.name: [] for m in comp.models}
    for r in runs:
        v = r.get(metric)
        if r["status"] == "completed" and isinstance(v, (int, float)) and math.isfinite(v):
            by_model[r["model"]][int(r["seed"])] = float(v)
            spent[r["model"]].append(float(r["flops_spent"]))
    first = by_model[comp.models[0].name]
    rows = []
    for m in comp.models:
        vals = by_model[m.name]
        s = summarise(list(vals.values())) if vals else None
        d = paired_difference(vals, first) if m is not comp.models[0] else None
        rows.append(
            {
                "model": m.name,
                "n": s.n if s else 0,
                "mean": s.mean if s else None,
                "std": s.std if s else None,
                "ci95_low": s.low if s else None,
                "ci95_high": s.high if s else None,
                "flops_train_per_window": m.flops_per_window,
                "flops_spent": sum(spent[m.name]) / len(spent[m.name]) if spent[m.name] else None,
                **_diff_cells(d),
                "source": m.source,
            }
        )
    return rows


def _diff_cells(d: Summary | None) -> dict[str, Any]:
    return {
        "diff_vs_first": d.mean if d else None,
        "diff_ci95_low": d.low if d else None,
        "diff_ci95_high": d.high if d else None,
        "diff_n": d.n if d else None,
    }


def write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    cols = list(dict.fromkeys(k for r in rows for k in r)) or ["model"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows([{k: "" if r.get(k) is None else r.get(k) for k in cols} for r in rows])
    return path


def compare(
    comp: Comparison,
    out: Path,
    *,
    storage: str | None = None,
    study_name: str = "compare",
    command: str = "",
    on_run: RunHook | None = None,
    on_step: StepHook | None = None,
    on_eval: EvalHook | None = None,
) -> dict[str, Any]:
    """Run (or resume) the comparison and write its files into ``out``; a summary dict."""
    out.mkdir(parents=True, exist_ok=True)
    study = open_compare_study(comp, storage or out / "compare.db", study_name)
    complete = run_all(comp, study, on_run=on_run, on_step=on_step, on_eval=on_eval)
    runs = run_rows(comp, study)
    rows = model_rows(comp, runs)
    files = {
        "runs": str(write_table(runs, out / "runs.csv")),
        "compare": str(write_table(rows, out / "compare.csv")),
    }
    label = budget_label(dataclasses.asdict(comp.train), per="run")
    if any(r["n"] for r in rows):
        files["plot"] = str(plot_compare(rows, comp.task, label, out / "compare.png"))
    (out / "compare.md").write_text(markdown(comp, rows, label, command))
    files["report"] = str(out / "compare.md")
    return {"interrupted": not complete, "files": files, "models": rows, "runs": len(runs)}


def plot_compare(rows: list[dict[str, Any]], task: Task, label: str, path: Path) -> Path:
    """Quality against each model's training FLOPs per window (its cost: at equal compute every
    run spends the same FLOPs, so the spent FLOPs would not tell the models apart) on a log axis
    in FLOP, one colour and marker per model (:func:`archsearch.fmt.styles`), the 95% interval
    over seeds as error bars; a model with a single seed puts a warning in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    shown = [row for row in rows if row["n"]]
    style = fmt.styles(row["model"] for row in rows)
    for r in shown:
        half = (r["ci95_high"] - r["ci95_low"]) / 2
        s = style[r["model"]]
        ax.errorbar(
            [r["flops_train_per_window"]],
            [r["mean"]],
            yerr=[[half], [half]],
            ls="none",
            capsize=4,
            markersize=8,
            label=f"{fmt.plot_text(r['model'])} (n = {r['n']})",
            **s.line(),
        )
    fmt.si_axis(ax, "x", "FLOP")
    ax.set_xlabel("training FLOPs per window of the model")
    better = "higher" if task.higher_is_better else "lower"
    ax.set_ylabel(f"{axis_label(task.metric)}, {better} is better")
    few = fmt.warn_few(min((r["n"] for r in shown), default=0), 2, "seed(s) for some model")
    title = f"{task.name}: mean and 95% interval over seeds, {label}"
    ax.set_title(title + (f"\n{few}" if few else ""), fontsize=10)
    ax.grid(True, alpha=0.3, which="major")
    fmt.legend(ax, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cell(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(comp: Comparison, rows: list[dict[str, Any]], label: str, command: str) -> str:
    """compare.md: the settings, the per-model table and the plot."""
    metric, first = comp.task.metric, comp.models[0].name
    md = [
        f"# Comparison on {comp.task.name}, {label}",
        "",
        f"- task: {comp.task.name} {comp.task_options}, T = {comp.task.seq_len}",
        f"- seeds: 0..{comp.seeds - 1} (each sets the initialisation and the data order)",
        f"- training: batch {comp.train.batch_size}, lr {comp.train.lr}",
        "",
        f"## {metric} {label}",
        "",
        f"| model | n | mean | std | 95% interval | training FLOP per window | "
        f"paired difference to {first} (95% interval) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f"[{_cell(r['ci95_low'])}, {_cell(r['ci95_high'])}]"
        diff = "-"
        if r["diff_vs_first"] is not None:
            diff = (
                f"{r['diff_vs_first']:+.4f} [{_cell(r['diff_ci95_low'])}, "
                f"{_cell(r['diff_ci95_high'])}]"
            )
        md.append(
            f"| {r['model']} | {r['n']} | {_cell(r['mean'])} | {_cell(r['std'])} | {ci} | "
            f"{r['flops_train_per_window']:.3g} | {diff} |"
        )
    md += [
        "",
        "An interval of the paired difference that excludes 0 means the two models differ "
        "beyond the seed-to-seed noise at this budget; one that includes 0 means they cannot "
        "be told apart with these seeds.",
        "",
        "![quality against training FLOPs](compare.png)",
        "",
    ]
    if command:
        md += ["Made by:", "", f"    {command}", ""]
    return "\n".join(md)
