"""Wall time of one study of tiny trials: 1 worker with one thread vs N workers with one thread
each, on one machine, sharing a journal file (Optuna's storage for several processes on one host).

    python benchmarks/parallel_workers.py                 # 16 trials, 1 vs 2 workers
    python benchmarks/parallel_workers.py --trials 16 --workers 4

Every trial has the same cost (one model shape; only the MLP ratio varies, by less than 1 %, so
no two trials share parameters and none is skipped as a duplicate), so the two runs do the same
work and the ratio of their wall times is the speed-up. Both runs are real `archsearch search`
commands (`--workers 1` runs in-process; `--workers N` starts N `archsearch worker` processes).
Prints both wall times and the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = """\
version: 1
name: bench-workers
seq_len: 64
fixed: {vocab_size: 256, max_seq_len: 64, d_model: 64}
params:
  n_layers: 2
  mlp_ratio: {low: 2.0, high: 2.02}
layers:
  mix: uniform
  mixer:
    softmax: {n_heads: 2}
objectives:
  - {metric: bits_per_byte, direction: minimize}
  - {metric: flops_fwd, direction: minimize}
task: {name: lm, options: {eval_tokens: 2048}}
train: {budget_tokens: BUDGET, batch_size: 8, evals: 1, halving: {rungs: 1}}
"""


def run(space: Path, out: Path, trials: int, workers: int) -> float:
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "archsearch", "search", str(space), "--trials", str(trials)]
    cmd += ["--workers", str(workers), "--threads", "1", "--no-report", "--json"]
    cmd += ["--sampler", "random", "--storage", f"journal:{out / 'study.journal'}", "-o", str(out)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--budget-tokens", type=int, default=200_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        space = Path(tmp) / "space.yaml"
        space.write_text(SPACE.replace("BUDGET", str(args.budget_tokens)))
        # one thread for the single worker too: the comparison is workers, not threads
        import os

        os.environ["OMP_NUM_THREADS"] = "1"
        one = run(space, Path(tmp) / "one", args.trials, 1)
        many = run(space, Path(tmp) / "many", args.trials, args.workers)
    print(f"{args.trials} trials of {args.budget_tokens:,} tokens, one thread per worker")
    print(f"1 worker:  {one:7.1f} s wall")
    print(f"{args.workers} workers: {many:7.1f} s wall")
    print(f"speed-up: {one / many:.2f}x")


if __name__ == "__main__":
    main()
