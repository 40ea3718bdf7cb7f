"""ECP at segment m vs S2-Attn at group G = 2m: attention-core FLOPs and keys per query.

Issue 4's reading of "same attention complexity as LongLoRA": the two have the same per-query key
budget (2m = G). Prints the dense-masked and exact core FLOPs per layer across T and the fitted
log-log slope of ECP's forward FLOPs.
Usage: python benchmarks/ecp_vs_s2attn.py [--m 256] [--d-model 512]
"""

from __future__ import annotations

import argparse

from archsearch.mixers import MixerContext, get_mixer, mixer_config
from archsearch.profiling.scaling import loglog_slope


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=512)
    args = ap.parse_args()
    m, D = args.m, args.d_model
    ctx = MixerContext(d_model=D)
    ecp, s2 = (
        mixer_config("ecp", n_heads=8, segment_len=m),
        mixer_config("s2attn", n_heads=8, group_size=2 * m),
    )
    E, S = get_mixer("ecp"), get_mixer("s2attn")
    lengths = [2048, 4096, 8192, 16384, 32768, 65536]
    print(f"D = {D}, ECP m = {m}, S2-Attn G = {2 * m}; attention-core FLOPs per layer")
    print(f"{'T':>7}{'ECP dense':>16}{'S2 dense':>16}{'dense diff':>12}{'exact ECP/S2':>14}")
    fe = [E.flops(ecp, ctx, T) for T in lengths]
    for T, f in zip(lengths, fe, strict=True):
        g = S.flops(s2, ctx, T)
        diff = (f.core_dense - g.core_dense) / g.core_dense
        print(
            f"{T:>7}{f.core_dense:>16,}{g.core_dense:>16,}{diff:>+12.4%}"
            f"{f.core_exact / g.core_exact:>14.3f}"
        )
    print(
        f"ECP forward FLOPs, fitted log-log slope 2K-64K: dense "
        f"{loglog_slope(lengths, [f.dense for f in fe]):.4f}, attention core "
        f"{loglog_slope(lengths, [f.core_dense for f in fe]):.4f}"
    )
    print("keys per query (2m vs G) are checked on the masks by tests/mixers/test_ecp.py")


if __name__ == "__main__":
    main()
