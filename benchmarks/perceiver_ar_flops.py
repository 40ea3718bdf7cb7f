"""PerceiverAR forward FLOPs at fixed N as the window M grows (issue 4 acceptance figure).

Prints, per M: the analytic dense-masked forward FLOPs, the FlopCounterMode count of the real
model on the meta device, the marginal cost of one more input token, and the same for a dense
decoder with the same layers; then the fitted log-log slopes. Usage:
python benchmarks/perceiver_ar_flops.py [MODEL.yaml]   (default: models/perceiver-ar.yaml)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from archsearch.model.config import load_model_config
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model
from archsearch.profiling.counter import count_flops
from archsearch.profiling.scaling import loglog_slope

ROOT = Path(__file__).resolve().parents[1]


def main(path: str) -> None:
    cfg = load_model_config(path)
    lengths = [8192, 16384, 32768, 65536, 131072, 262144]
    cfg = cfg.replace(max_seq_len=max(lengths))
    model = build_model(cfg, device="meta")
    dec = cfg.replace(family="decoder")
    print(f"{cfg.name}: family {cfg.family.to_dict()}, d_model {cfg.d_model}")
    head = ("M", "analytic dense", "counted (meta)", "per extra token", "dense decoder")
    print(f"{head[0]:>8}{head[1]:>18}{head[2]:>18}{head[3]:>17}{head[4]:>22}")
    analytic, counted, dense = [], [], []
    for M in lengths:
        with torch.device("meta"):
            idx = torch.zeros(1, M, dtype=torch.long)
        analytic.append(model_cost(cfg, M).forward_dense)
        counted.append(count_flops(lambda idx=idx: model(idx)).total)
        dense.append(model_cost(dec, M).forward_dense)
        marginal = (
            "" if len(analytic) < 2 else f"{(analytic[-1] - analytic[-2]) / (M - M // 2):,.0f}"
        )
        print(f"{M:>8}{analytic[-1]:>18,}{counted[-1]:>18,}{marginal:>17}{dense[-1]:>22,}")
    cv = [model_cost(cfg, M).counter_visible for M in lengths]
    D = cfg.d_model
    N = cfg.n_scored(max(lengths))
    print(f"counted == analytic matmul count at every M: {counted == cv}")
    print(
        f"4·D² + 4·D·N (K, V projection + dense-masked core per input token): {4 * D * (D + N):,}"
    )
    print(
        f"log-log slope: PerceiverAR analytic {loglog_slope(lengths, analytic):.3f}, "
        f"counted {loglog_slope(lengths, counted):.3f}; "
        f"dense decoder {loglog_slope(lengths, dense):.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "models" / "perceiver-ar.yaml"))
