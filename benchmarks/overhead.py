"""The toolkit's own overhead, as ratios measured in one run on this machine.

(a) the scaling sweep: ``archsearch scale`` over four reference models (softmax, HSM, ECP,
    Combiner-Fixed), FLOPs and memory, against a bare ``python3 -c "import torch"``; and the
    same points in one process, serial against the worker pool (whether the pool pays here);
(b) the start-up: the process time of ``archsearch build models/gpt2-small.yaml --json`` (and
    with the ``--count`` cross-check) against ``import torch``;
(c) one quickstart search at the quickstart's settings (its space and budget, 4 trials): where
    its time goes (training, evaluation, profiling, storage, start-up, report), as fractions of
    the process time, and the training steps' share of the trials' own wall time, from what each
    trial records (``train_seconds``, ``train_wall_seconds``, ``profile_seconds``).

Every command runs in a fresh process from this checkout (``PYTHONPATH`` set to it) with
``OMP_NUM_THREADS`` unset, so the sweep may use every core. Medians of ``--repeats`` runs.
The machine's other load shows in every figure: compare the ratios, not the seconds.

Usage: python3 benchmarks/overhead.py [--quick] [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "reports" / "scaling-reference" / "models"
SWEEP = [
    MODELS / f for f in ("01-softmax.yaml", "07-hsm.yaml", "04-ecp.yaml", "05-combiner-fixed.yaml")
]
GPT2 = ROOT / "models" / "gpt2-small.yaml"
FULL_LENGTHS = "1k,2k,4k,8k,16k,32k,64k,128k,256k,512k,1m"
QUICK_LENGTHS = "1k,4k,16k,64k"

#: one process: the sweep's points, serial and in the pool (argv: lengths, then model paths)
_POOL_SNIPPET = """
import sys, time
from archsearch.cli.profile import parse_lengths
from archsearch.profiling.profiles import Profile
from archsearch.profiling.runner import Sweep, cpu_cores, load_variants
variants = load_variants(sys.argv[2:])
lengths = parse_lengths([sys.argv[1]])
with Sweep(variants[:1], lengths[:1], Profile(), {"flops", "memory"}, workers=1) as s:
    list(s.points())  # warm up the dispatch caches before timing either
for workers in (1, None):
    t0 = time.perf_counter()
    with Sweep(variants, lengths, Profile(), {"flops", "memory"}, fvcore=False,
               workers=workers) as s:
        n = len(list(s.points()))
    print(s.workers or 1, n, time.perf_counter() - t0, cpu_cores())
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args: list[str]) -> float:
    """Wall seconds of one process (its output discarded; a failure stops the benchmark)."""
    t0 = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=_env(), check=True, capture_output=True)
    return time.perf_counter() - t0


def _median(args: list[str], repeats: int) -> float:
    return statistics.median(_run(args) for _ in range(repeats))


def sweep(tmp: Path, repeats: int, lengths: str) -> dict[str, Any]:
    """(a): the CLI sweep and a bare torch import, then serial vs pool in one process."""
    py = sys.executable
    torch_s = _median([py, "-c", "import torch"], repeats)
    cmd = [py, "-m", "archsearch", "scale", *map(str, SWEEP), "--lengths", lengths]
    cmd += ["--metrics", "flops,memory", "--out", str(tmp / "scale"), "--force", "--json"]
    sweep_s = _median(cmd, repeats)
    out = subprocess.run(
        [py, "-c", _POOL_SNIPPET, lengths, *map(str, SWEEP)],
        cwd=ROOT,
        env=_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    (_, points, serial_s, cores), (workers, _, pool_s, _) = (
        [float(x) for x in line.split()] for line in out[:2]
    )
    return {
        "lengths": lengths,
        "points": int(points),
        "cores": int(cores),
        "import_torch_s": torch_s,
        "sweep_s": sweep_s,
        "sweep_over_import_torch": sweep_s / torch_s,
        "in_process_serial_s": serial_s,
        "in_process_pool_s": pool_s,
        "pool_workers": int(workers),
        "pool_speedup": serial_s / pool_s,
    }


def startup(repeats: int) -> dict[str, Any]:
    """(b): ``archsearch build`` against ``import torch``, interleaved run by run."""
    py = sys.executable
    runs: dict[str, list[float]] = {"torch": [], "build": [], "build_count": []}
    build = [py, "-m", "archsearch", "build", str(GPT2), "--json"]
    for _ in range(repeats):
        runs["torch"].append(_run([py, "-c", "import torch"]))
        runs["build"].append(_run(build))
        runs["build_count"].append(_run([*build, "--count"]))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "import_torch_s": med["torch"],
        "build_s": med["build"],
        "build_count_s": med["build_count"],
        "build_minus_import_torch_s": med["build"] - med["torch"],
        "build_count_minus_import_torch_s": med["build_count"] - med["torch"],
        "build_over_import_torch": med["build"] / med["torch"],
    }


def quickstart(tmp: Path, trials: int, budget_flops: str | None) -> dict[str, Any]:
    """(c): one quickstart search, its process time split by what the trials record
    (``budget_flops`` None: the quickstart space's own budget)."""
    import optuna

    out = tmp / "quickstart"
    cmd = [sys.executable, "-m", "archsearch", "quickstart", "--out", str(out)]
    cmd += ["--trials", str(trials), "--json"]
    cmd += ["--budget-flops", budget_flops] if budget_flops else []
    started = datetime.now()
    total = _run(cmd)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{out / 'study.db'}")
    ts = [t for t in study.trials if t.datetime_start and t.datetime_complete]
    a = [t.user_attrs for t in ts]
    train = sum(u.get("train_seconds", 0.0) for u in a)
    train_wall = sum(u.get("train_wall_seconds", 0.0) for u in a)
    profiling = sum(u.get("profile_seconds", 0.0) for u in a)
    trial_wall = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in ts)
    first = min(t.datetime_start for t in ts)
    last = max(t.datetime_complete for t in ts)
    parts = {
        "training": train,
        "evaluation": train_wall - train,  # and the model's build, inside train()
        "profiling": profiling,
        "storage": trial_wall - train_wall - profiling,  # sampling, Optuna writes, between
        "start-up": (first - started).total_seconds(),
        "report": total - (last - started).total_seconds(),
    }
    parts["other"] = total - sum(parts.values())  # between trials (the loop, the live table)
    return {
        "trials": len(ts),
        "budget_flops": budget_flops or "the space's",
        "process_s": total,
        "training_of_trials": train / trial_wall if trial_wall else 0.0,
        "seconds": parts,
        "fractions": {k: v / total for k, v in parts.items()},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 lengths, 1 repeat, 2 short trials")
    ap.add_argument("--repeats", type=int, default=None, help="runs per median (default 3)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="archsearch-overhead-") as d:
        tmp = Path(d)
        res = {
            "machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
            "repeats": repeats,
            "sweep": sweep(tmp, repeats, QUICK_LENGTHS if args.quick else FULL_LENGTHS),
            "startup": startup(repeats),
            "quickstart": quickstart(tmp, 2 if args.quick else 4, "1e10" if args.quick else None),
        }
    if args.json:
        print(json.dumps(res, indent=2))
        return
    _print(res)


def _print(res: dict[str, Any]) -> None:
    s, b, q = res["sweep"], res["startup"], res["quickstart"]
    print(f"repeats per median: {res['repeats']}; cores: {s['cores']}")
    print(
        f"(a) sweep, 4 models x {s['lengths']} ({s['points']} points): {s['sweep_s']:.1f} s = "
        f"{s['sweep_over_import_torch']:.1f} x import torch ({s['import_torch_s']:.2f} s)"
    )
    print(
        f"    in one process: serial {s['in_process_serial_s']:.1f} s, "
        f"{s['pool_workers']} workers {s['in_process_pool_s']:.1f} s "
        f"(x{s['pool_speedup']:.2f})"
    )
    print(
        f"(b) archsearch build gpt2-small --json: {b['build_s']:.2f} s = import torch "
        f"({b['import_torch_s']:.2f} s) + {b['build_minus_import_torch_s']:.2f} s; "
        f"--count: + {b['build_count_minus_import_torch_s']:.2f} s"
    )
    print(
        f"(c) quickstart, {q['trials']} trials at {q['budget_flops']} FLOPs: {q['process_s']:.1f} s"
    )
    for k, v in q["fractions"].items():
        print(f"    {k:<11}{100 * v:6.1f}%  ({q['seconds'][k]:.2f} s)")
    print(f"    training steps: {100 * q['training_of_trials']:.1f}% of the trials' wall time")


if __name__ == "__main__":
    main()
