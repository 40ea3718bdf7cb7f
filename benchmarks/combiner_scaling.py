"""How does Combiner's attention-core work grow with T (block s = row m = ⌊√T⌋)?

For each variant prints the fitted log-log slope of the attention-core FLOPs (forward, one
sequence) over T = 1K..64K: the analytic dense-masked and exact counts, and FlopCounterMode on
the real module on the meta device (nothing allocated) minus the analytic projections. With
``--time``, also the CPU wall time of a float32 forward pass (B = 1), and its fitted slope.

Usage: python benchmarks/combiner_scaling.py [--time] [--d-model 64] [--heads 4]
"""

from __future__ import annotations

import argparse
import time

import torch

from archsearch.mixers import MixerContext, build_mixer, get_mixer, mixer_config
from archsearch.profiling.counter import count_flops
from archsearch.profiling.scaling import loglog_slope

LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]
COUNTED = [1024, 4096, 16384, 65536]
TIMED = [1024, 2048, 4096, 8192, 16384]
VARIANTS = ["fixed", "logsparse", "axial", "mixture"]


def config(variant: str, T: int, heads: int):  # noqa: ANN201
    block = 128 if variant == "logsparse" else "sqrt"  # ⌊√T⌋ at every T; logsparse has none
    return mixer_config("combiner", n_heads=heads, variant=variant, block_size=block)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", action="store_true", help="also time CPU forward passes")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    args = ap.parse_args()
    cls = get_mixer("combiner")
    ctx = MixerContext(d_model=args.d_model)
    print(f"torch {torch.__version__}; D = {args.d_model}, H = {args.heads}, s = m = ⌊√T⌋")
    head = f"{'variant':<11}{'dense':>8}{'exact':>8}{'counter':>9}"
    print(head + ("   CPU time (s) at " + ", ".join(map(str, TIMED)) if args.time else ""))
    for variant in VARIANTS:
        flops = [cls.flops(config(variant, T, args.heads), ctx, T) for T in LENGTHS]
        counted = []
        for T in COUNTED:
            cfg = config(variant, T, args.heads)
            with torch.device("meta"):
                mod = build_mixer(cfg, ctx)
                x = torch.empty(1, T, args.d_model)
            total = count_flops(lambda mod=mod, x=x: mod(x)).total
            counted.append(total - cls.flops(cfg, ctx, T).projections)
        line = (
            f"{variant:<11}{loglog_slope(LENGTHS, [f.core_dense for f in flops]):>8.3f}"
            f"{loglog_slope(LENGTHS, [f.core_exact for f in flops]):>8.3f}"
            f"{loglog_slope(COUNTED, counted):>9.3f}"
        )
        if args.time:
            times = []
            for T in TIMED:
                torch.manual_seed(0)
                mod = build_mixer(config(variant, T, args.heads), ctx)
                x = torch.randn(1, T, args.d_model)
                with torch.no_grad():
                    mod(x)  # warm-up
                    t0 = time.perf_counter()
                    for _ in range(3):
                        mod(x)
                times.append((time.perf_counter() - t0) / 3)
            line += "   " + ", ".join(f"{t:.3f}" for t in times)
            line += f"  (slope {loglog_slope(TIMED, times):.2f})"
        print(line)


if __name__ == "__main__":
    main()
