"""Is successive halving telling the truth? Kendall τ between quality early and at the end.

    python benchmarks/halving_fidelity.py                     # 12 models, 400k tokens each
    python benchmarks/halving_fidelity.py --models 4 --tokens 100000 --out runs/bench-halving

A fixed set of models is drawn deterministically (``random.Random(seed)``, no Optuna sampler)
from the shipped spaces' families and mixers, each at the quickstart's size and settings: T = 256,
width 64/128, 2-4 layers, MLP ratio 2/4, params <= 2,000,000 (the quickstart's constraint), the lm
task with ``eval_tokens: 8192`` and the quickstart's recipe (batch 8, lr 0.002) on a token
budget, every model seeing the same tokens: 400k by default, half the quickstart's equal-tokens
study (``archsearch quickstart --budget-tokens 800k``), to stay under ~8 minutes on a 2-core CPU.
Half of the models come from
``quickstart.yaml`` itself; the rest from ``all_families``, ``perceiver_family`` and
``hsm_hybrid`` with their size fields replaced by the quickstart's (a draw T = 256 cannot build,
e.g. an ECP segment of 512, one that breaks its space's constraints on params or
receptive_field, or one whose family and mixers an earlier model already has, is drawn
again). Every model trains ONCE on the full budget, with
held-out bits per byte evaluated at 10 %, 30 % and 100 % of it; then Kendall τ-b and Spearman ρ
between the value at each point and the value at 100 % (100 % against itself = 1, a sanity row).
A search's successive halving judges models at such points (the quickstart's rung is at 1/3),
so a low τ means it stops models that would have ended well.

Prints the table and writes ``results.csv`` (one row per model) and ``README.md`` (command,
device, wall time, models, τ/ρ table) under --out (default ``reports/halving``). Token budgets
make every number independent of the machine's speed (only the wall time depends on it).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

#: (space, how many models) drawn from each
SOURCES = (("quickstart", 6), ("all_families", 3), ("perceiver_family", 3), ("hsm_hybrid", 1))
#: the quickstart's size, applied to every space
SIZE = {
    "d_model": {"choices": [64, 128]},
    "n_layers": {"low": 2, "high": 4},
    "mlp_ratio": {"choices": [2.0, 4.0]},
}
FRACTIONS = (0.1, 0.3, 1.0)
MAX_PARAMS = 2_000_000


class SeededTrial:
    """The ``suggest_*`` calls :func:`archsearch.search.space.sample` makes, answered by a
    seeded ``random.Random`` (stable across Optuna versions)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.params[name] = self.rng.choice(choices)
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        self.params[name] = self.rng.randrange(low, high + 1, step)
        return self.params[name]

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        self.params[name] = self.rng.uniform(low, high)
        return self.params[name]


def quickstart_sized(name: str) -> Any:
    """The shipped space ``name`` at the quickstart's T and size."""
    from archsearch.search.space import resolve_space_path, space_from_data
    from archsearch.yamlio import load_yaml

    data, _ = load_yaml(resolve_space_path(name))
    data = dict(data)
    data["seq_len"] = 256
    data["fixed"] = {**data.get("fixed", {}), "max_seq_len": 256}
    data["params"] = {**data.get("params", {}), **SIZE}
    return space_from_data(data, source=name)


def draw_models(seed: int, task: Any) -> list[tuple[str, dict[str, Any], Any]]:
    """(space, model data, config) of every model, in a fixed order."""
    from archsearch.errors import ConfigError
    from archsearch.model.transformer import count_params, receptive_field
    from archsearch.search.results import model_label
    from archsearch.search.space import sample

    rng = random.Random(seed)
    models: list[tuple[str, dict[str, Any], Any]] = []
    seen: set[str] = set()
    for name, count in SOURCES:
        space = quickstart_sized(name)
        got = 0
        for _ in range(500):
            if got == count:
                break
            trial = SeededTrial(rng)
            try:
                data = sample(trial, space)
                cfg = _config(data, task)
            except ConfigError:
                continue
            key = repr(sorted(trial.params.items()))
            label = model_label(data)
            # beyond the quickstart, each model brings a family/mixer combination not yet drawn
            fresh = name == "quickstart" or label not in seen
            analytic = {"params": count_params(cfg)["total"], "receptive_field": 0}
            analytic["receptive_field"] = receptive_field(cfg, 256)
            broken = [c for c in space.constraints if c.metric in analytic]
            broken = [c for c in broken if c.broken(analytic[c.metric])]
            if key in seen or not fresh or broken or analytic["params"] > MAX_PARAMS:
                continue
            seen.update((key, label))
            data["name"] = f"{name}-{got}-{model_label(data)}"
            models.append((name, data, cfg))
            got += 1
    return models


def _config(data: dict[str, Any], task: Any) -> Any:
    from archsearch.model.config import model_config_from_dict

    cfg = model_config_from_dict(data)
    cfg.check_seq_len(256)
    task.check_model(cfg)
    return cfg


def at_fractions(res: Any, total_steps: int) -> list[float | None]:
    """Held-out bits per byte at each of :data:`FRACTIONS` of the budget."""
    out = []
    for f in FRACTIONS:
        p = min(res.curve, key=lambda p: abs(p.step / total_steps - f))
        out.append(p.metrics.get("bits_per_byte"))
    return out


def describe(data: dict[str, Any]) -> str:
    """'d_model 128, 3 × ecp(n_heads=2, segment_len=64), mlp 4.0, family decoder'."""

    def mixer(m: dict[str, Any]) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in m.items() if k != "kind")
        return f"{m['kind']}({fields})" if fields else m["kind"]

    fam = data["family"]
    fam = fam if isinstance(fam, str) else ", ".join(f"{k}={v}" for k, v in fam.items())
    layers = data["layers"]
    if len(layers) == 1:
        stack = f"{layers[0].get('repeat', 1)} × {mixer(layers[0]['mixer'])}"
    else:
        stack = " / ".join(mixer(m["mixer"]) for m in layers)
    return f"d_model {data['d_model']}, {stack}, mlp {layers[0]['mlp_ratio']}, family {fam}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=400_000)
    ap.add_argument("--models", type=int, default=None, help="only the first N models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/halving"))
    ap.add_argument("--list", action="store_true", help="list the models and stop")
    args = ap.parse_args()

    import torch

    from archsearch.model.costs import model_cost
    from archsearch.model.transformer import count_params
    from archsearch.profiling.profiles import load_profile
    from archsearch.quality.train import train
    from archsearch.search.space import load_space
    from archsearch.search.study import settings_from

    profile = load_profile("cpu")
    settings = settings_from(load_space("quickstart"), profile=profile, budget_tokens=args.tokens)
    from archsearch.quality.tasks import make_task

    task = make_task(settings.task, settings.task_options, seq_len=256)
    tcfg = dataclasses.replace(settings.train, evals=1, eval_at=FRACTIONS[:-1])
    total = tcfg.total_steps(tcfg.batch_size * 256)
    models = draw_models(args.seed, task)[: args.models]
    if args.list:
        for i, (_, data, cfg) in enumerate(models):
            print(f"{i}: {data['name']}: {describe(data)}, {count_params(cfg)['total']:,} params")
        return
    rows = []
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    for i, (space, data, cfg) in enumerate(models):
        res = train(cfg, task, tcfg, profile)
        vals = at_fractions(res, total)
        cost = model_cost(cfg, 256)
        row = {
            "model": i,
            "space": space,
            "name": data["name"],
            "params": count_params(cfg)["total"],
            "flops_fwd": cost.forward_exact,
            **{_col(f): v for f, v in zip(FRACTIONS, vals, strict=True)},
            "status": res.status,
            "train_seconds": round(res.train_seconds, 1),
            "model_desc": describe(data),
        }
        rows.append(row)
        print(
            f"[{i + 1}/{len(models)}] {data['name']}: "
            + ", ".join(f"{v:.3f}" if v is not None else "-" for v in vals)
            + f" bpb ({res.train_seconds:.0f} s)",
            flush=True,
        )
    wall = time.perf_counter() - t0
    table = agreement(rows, args.tokens)
    print(f"\n{'budget':>7} {'tokens':>9} {'n':>3} {'tau':>6} {'rho':>6} {'top third':>10} front")
    for t in table:
        print(
            f"{t['fraction']:>7.0%} {t['tokens']:>9,} {t['n']:>3} {_c(t['tau']):>6} "
            f"{_c(t['rho']):>6} {t['kept']:>10} {t['front_kept']} (stopped: {t['front_stopped']})"
        )
    print(f"wall {wall:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    env = (
        f"{os.cpu_count()}-core {platform.processor() or platform.machine()} CPU, torch "
        f"{torch.__version__}, {torch.get_num_threads()} torch thread(s); load average "
        f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    _readme(args, rows, table, wall, env)


def _col(f: float) -> str:
    return f"bpb_{round(f * 100)}pct"


def agreement(rows: list[dict[str, Any]], tokens: int) -> list[dict[str, Any]]:
    """Per evaluation point: τ-b and ρ against the final value over the completed models, and
    how many of the final top third (eta 3, as in the quickstart) a top-third cut there keeps.
    Adds each model's rank at each point (``rank_<f>pct``, 1 = best) to ``rows``."""
    from archsearch.search.fidelity import kendall_tau_b, spearman_rho
    from archsearch.search.halving import Halving, non_dominated_ranks, rank_order
    from archsearch.search.results import pareto_front

    ok = [r for r in rows if r["status"] == "completed" and r[_col(1.0)] is not None]
    final = [r[_col(1.0)] for r in ok]
    k = Halving(eta=3).n_promoted(len(ok))
    best_final = set(sorted(range(len(ok)), key=lambda i: final[i])[:k])
    front = set(pareto_front([[r[_col(1.0)], r["flops_fwd"]] for r in ok]))
    table = []
    for f in FRACTIONS:
        xs = [r[_col(f)] for r in ok]
        order = sorted(range(len(ok)), key=lambda i: xs[i])
        for rank, i in enumerate(order, start=1):
            ok[i][f"rank_{round(f * 100)}pct"] = rank
        kept = len(best_final & set(order[:k]))
        # MO-ASHA on (quality here, flops_fwd), every model judged at once (eta 3)
        pts = [[x, r["flops_fwd"]] for x, r in zip(xs, ok, strict=True)]
        nd = non_dominated_ranks(pts)
        goes_on = {i for i in range(len(ok)) if nd[i] == 0} | set(rank_order(pts)[:k])
        table.append(
            {
                "fraction": f,
                "tokens": round(f * tokens),
                "n": len(ok),
                "tau": kendall_tau_b(xs, final),
                "rho": spearman_rho(xs, final),
                "kept": f"{kept} of {k}",
                "front_kept": f"{len(front & goes_on)} of {len(front)}",
                "front_stopped": ", ".join(f"#{ok[i]['model']}" for i in sorted(front - goes_on)),
            }
        )
    return table


def _c(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.2f}"


def _readme(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    table: list[dict[str, Any]],
    wall: float,
    env: str,
) -> None:
    threads = os.environ.get("OMP_NUM_THREADS")
    cmd = (f"OMP_NUM_THREADS={threads} " if threads else "") + "python3 "
    cmd += " ".join(shlex.quote(a) for a in sys.argv)
    md = [
        "# Does successive halving keep the right models?",
        "",
        "Made by (see the script's docstring for how the models are drawn):",
        "",
        f"    {cmd}",
        "",
        f"- {len(rows)} models, each trained once on {args.tokens:,} tokens (lm task, T = 256, "
        "the quickstart's recipe), held-out bits per byte at 10 %, 30 % and 100 % of the budget",
        f"- device: {env}; wall time {wall / 60:.1f} min",
        "",
        "| budget | tokens | n | Kendall τ-b vs 100 % | Spearman ρ vs 100 % | final top third "
        "in the top third here | final front that MO-ASHA here lets go on (stopped) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in table:
        md.append(
            f"| {t['fraction']:.0%} | {t['tokens']:,} | {t['n']} | {_c(t['tau'])} | "
            f"{_c(t['rho'])} | {t['kept']} | {t['front_kept']} ({t['front_stopped'] or '-'}) |"
        )
    md += [
        "",
        "The last two columns: with eta = 3 (the quickstart's), a top-third cut on bits per "
        "byte alone, and the search's MO-ASHA rule (go on if non-dominated on (bits per byte "
        "here, flops_fwd) or in the best third by non-dominated sorting), every model judged at "
        "once; the final front is the Pareto front of (bits per byte at 100 %, flops_fwd).",
    ]
    md += [
        "",
        "Held-out bits per byte (lower is better) and, in brackets, the model's rank among the "
        f"{len(rows)} at that point:",
        "",
        "| # | model | params | MFLOPs (flops_fwd) | bpb @ 10 % | @ 30 % | @ 100 % | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = " | ".join(
            f"{r[_col(f)]:.3f} ({r.get(f'rank_{round(f * 100)}pct', '-')})"
            if r[_col(f)] is not None
            else "-"
            for f in FRACTIONS
        )
        md.append(
            f"| {r['model']} | {r['name']}: {r['model_desc']} | {r['params']:,} | "
            f"{r['flops_fwd'] / 1e6:.1f} | {cells} | "
            f"{r['train_seconds']} |"
        )
    # the reading is written by a person: a re-run keeps it
    path = args.out / "README.md"
    old = path.read_text() if path.is_file() else ""
    reading = old[old.index("## Reading") :] if "## Reading" in old else "## Reading\n\n(to do)\n"
    path.write_text("\n".join(md) + "\n\n" + reading)


if __name__ == "__main__":
    main()
