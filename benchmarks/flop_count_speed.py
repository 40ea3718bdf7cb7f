"""How long does it take to FLOP-count a model on the meta device, as T grows?

Prints one line per length: analytic vs FlopCounterMode count and the wall time of each.
Usage: python benchmarks/flop_count_speed.py [MODEL.yaml ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from archsearch.model.config import load_model_config
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model
from archsearch.profiling.counter import count_flops

ROOT = Path(__file__).resolve().parents[1]


def main(paths: list[str]) -> None:
    paths = paths or [str(p) for p in sorted((ROOT / "archsearch" / "defaults").glob("*.yaml"))]
    print(f"torch {torch.__version__}; counting on the meta device (nothing allocated)")
    print(
        f"{'model':<22}{'T':>8}{'analytic s':>12}{'counter s':>12}{'counted FLOPs':>20}{'match':>7}"
    )
    for path in paths:
        for T in (1024, 4096, 16384, 65536):
            cfg = load_model_config(path)
            cfg = cfg.replace(max_seq_len=max(cfg.max_seq_len, T))
            t0 = time.perf_counter()
            analytic = model_cost(cfg, T).counter_visible
            t1 = time.perf_counter()
            model = build_model(cfg, device="meta")
            with torch.device("meta"):
                idx = torch.zeros(1, T, dtype=torch.long)
            counted = count_flops(lambda model=model, idx=idx: model(idx)).total
            t2 = time.perf_counter()
            print(
                f"{cfg.name:<22}{T:>8}{t1 - t0:>12.4f}{t2 - t1:>12.3f}{counted:>20,}"
                f"{'yes' if counted == analytic else 'NO':>7}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
