"""Time to FLOP-count (and memory-estimate) the reference sweep: every reference model, 1K..1M.

Runs what ``archsearch scale`` runs per point, on the meta device / fake tensors (nothing is
allocated), and prints the seconds each counter took, per variant and in total. No assertions.

Usage: python benchmarks/flop_count_reference.py [--lengths 1k,...,1m] [--no-fvcore] [MODEL ...]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from archsearch.cli._common import parse_length
from archsearch.model.config import load_model_config
from archsearch.model.costs import model_cost
from archsearch.profiling.flops import compare_flops
from archsearch.profiling.memory import estimate_memory

REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "scaling-reference" / "models"
LENGTHS = "1k,2k,4k,8k,16k,32k,64k,128k,256k,512k,1m"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--lengths", default=LENGTHS)
    ap.add_argument("--no-fvcore", action="store_true")
    args = ap.parse_args()
    paths = args.models or sorted(REFERENCE.glob("*.yaml"))
    lengths = [parse_length(t) for t in args.lengths.split(",")]
    cols = ["analytic", "fcm", "fcm_matmul", "fcm_fwd_bwd", "fvcore", "fvcore_default", "memory"]
    total: dict[str, float] = defaultdict(float)
    print(
        f"{len(paths)} models x {len(lengths)} lengths ({lengths[0]:,} .. {lengths[-1]:,}); "
        "seconds per variant (all lengths)"
    )
    print(f"{'variant':<20}" + "".join(f"{c:>15}" for c in cols) + f"{'wall':>9}")
    wall0 = time.perf_counter()
    for p in paths:
        cfg0 = load_model_config(p)
        secs: dict[str, float] = defaultdict(float)
        t_variant = time.perf_counter()
        for T in lengths:
            cfg = cfg0.replace(max_seq_len=T)
            t0 = time.perf_counter()
            model_cost(cfg, T)
            secs["analytic"] += time.perf_counter() - t0
            cmp = compare_flops(cfg, T, fvcore=not args.no_fvcore)
            for name, c in cmp.counters.items():
                secs[name] += c.seconds
            t0 = time.perf_counter()
            estimate_memory(cfg, T)
            secs["memory"] += time.perf_counter() - t0
        for k, v in secs.items():
            total[k] += v
        wall = time.perf_counter() - t_variant
        print(
            f"{cfg0.name or p.stem:<20}"
            + "".join(f"{secs[c]:>15.2f}" for c in cols)
            + f"{wall:>9.1f}"
        )
    print(
        f"{'total':<20}"
        + "".join(f"{total[c]:>15.2f}" for c in cols)
        + f"{time.perf_counter() - wall0:>9.1f}"
    )


if __name__ == "__main__":
    main()
