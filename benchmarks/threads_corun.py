"""Training throughput alone and with a second process on the same machine, by torch threads.

On a small machine, two processes that each ask torch for every core make OpenMP threads spin
for cores they do not get, and both slow down far more than the share they lose. This prints
tokens/s of ``archsearch train`` (a fixed number of steps of one model) in five settings:
alone with 1 thread and with all cores; two at once, each with 1 thread, each with all cores,
and each with all cores but ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep). Ratios are
taken within this one run (the machine is shared and noisy). No assertions.

Usage: python benchmarks/threads_corun.py [--model models/tiny-softmax.yaml] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _train(
    model: str, steps: int, threads: int, out: Path, wait: str | None
) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "ARCHSEARCH_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if wait:
        env["OMP_WAIT_POLICY"] = wait
    cmd = [
        sys.executable, "-m", "archsearch", "train", model, "--budget-steps", str(steps),
        "--evals", "1", "--json", "-o", str(out), "--force",
    ]  # fmt: skip
    pipe, null = subprocess.PIPE, subprocess.DEVNULL
    return subprocess.Popen(cmd, env=env, stdout=pipe, stderr=null, text=True)


def _tps(proc: subprocess.Popen[str]) -> float:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"train failed ({proc.returncode})")
    return float(json.loads(out)["tokens_per_s"])


def run(
    model: str, steps: int, threads: int, copies: int, tmp: Path, wait: str | None = None
) -> list[float]:
    procs = [
        _train(model, steps, threads, tmp / f"r{threads}-{copies}-{i}-{wait}", wait)
        for i in range(copies)
    ]
    return [_tps(p) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/tiny-softmax.yaml")
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores; {args.model}, {args.steps} steps per run; tokens/s of training")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.time()
        rows = []
        for copies in (1, 2):
            for threads in (1, cores):
                tps = run(args.model, args.steps, threads, copies, tmp)
                rows.append((copies, threads, tps))
                each = ", ".join(f"{x:,.0f}" for x in tps)
                print(f"{copies} process(es) x {threads} thread(s): {each}  (sum {sum(tps):,.0f})")
        if cores > 1:  # OpenMP threads that sleep instead of spinning while they wait
            tps = run(args.model, args.steps, cores, 2, tmp, "PASSIVE")
            rows.append((2, -cores, tps))
            each = ", ".join(f"{x:,.0f}" for x in tps)
            print(f"2 process(es) x {cores} thread(s), OMP_WAIT_POLICY=PASSIVE: {each}  "
                  f"(sum {sum(tps):,.0f})")  # fmt: skip
        base = {(c, t): sum(v) for c, t, v in rows}
        if cores > 1:
            print(
                f"two at once, all cores each vs 1 thread each: "
                f"{base[(2, cores)] / base[(2, 1)]:.2f}x the summed throughput; alone, all cores "
                f"vs 1 thread: {base[(1, cores)] / base[(1, 1)]:.2f}x"
            )
        print(f"wall {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
