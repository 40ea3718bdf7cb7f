"""Forward+backward throughput of every registered mixer vs ``softmax`` (SDPA) across T.

One mixer layer (width D, batch B) on whatever device is present (CUDA if available). For each T
the mixers are timed interleaved (all mixers once, then again, ...) so drift in clocks or load
does not pass for a difference between them; the ratio to softmax is taken within one length.
Each mixer runs its ``benchmark config`` (below): the settings a long-context user would pick.
Prints tokens/s and the ratio; no assertions.

Usage: python benchmarks/mixer_throughput.py [--lengths 1k,2k,4k] [--d-model 512] [--dtype ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from archsearch.cli._common import parse_length
from archsearch.mixers import MixerContext, build_mixer, list_mixers, mixer_config

#: one representative config per mixer (8 heads at D = 512)
CONFIGS = {
    "softmax": {"n_heads": 8},
    "sliding_window": {"n_heads": 8, "window": 512},
    "s2attn": {"n_heads": 8, "group_size": 512},
    "ecp": {"n_heads": 8, "segment_len": 256},
    "combiner": {"n_heads": 8, "variant": "fixed", "block_size": "sqrt"},
    "hsm": {"mixing": "ab"},
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _step(m: torch.nn.Module, x: torch.Tensor) -> None:
    m(x).float().pow(2).mean().backward()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    ap.add_argument("--lengths", default="1k,2k,4k,8k" if dev == "cpu" else "1k,4k,16k,64k")
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", default="float32" if dev == "cpu" else "bfloat16")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    D, B = args.d_model, args.batch
    lengths = [parse_length(t) for t in args.lengths.split(",")]
    kinds = [k for k in list_mixers() if k in CONFIGS]
    missing = sorted(set(list_mixers()) - set(CONFIGS))
    name = torch.cuda.get_device_name() if dev == "cuda" else "CPU"
    print(
        f"device {name} ({dev}), {args.dtype}, D = {D}, batch {B}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}; forward+backward of one mixer layer"
    )
    if missing:
        print(f"(no benchmark config for: {', '.join(missing)})")
    print(f"{'T':>8} {'mixer':<16}{'median ms':>11}{'IQR ms':>9}{'tokens/s':>12}{'vs softmax':>11}")
    for T in lengths:
        mods = {}
        for k in kinds:
            torch.manual_seed(0)
            ctx = MixerContext(d_model=D, max_seq_len=T, rope=True)
            mods[k] = build_mixer(mixer_config(k, **CONFIGS[k]), ctx).to(dev, dtype)
        x = torch.randn(B, T, D, device=dev, dtype=dtype, requires_grad=True)
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for k in kinds:  # warm-up
            _step(mods[k], x)
        for _ in range(args.rounds):
            for k in kinds:
                _sync(dev)
                t0 = time.perf_counter()
                _step(mods[k], x)
                _sync(dev)
                times[k].append((time.perf_counter() - t0) * 1e3)
        base = statistics.median(times["softmax"])
        for k in kinds:
            ms = statistics.median(times[k])
            q = statistics.quantiles(times[k], n=4) if len(times[k]) > 1 else [ms, ms, ms]
            print(
                f"{T:>8} {k:<16}{ms:>11.2f}{q[2] - q[0]:>9.2f}{B * T / (ms / 1e3):>12,.0f}"
                f"{base / ms:>10.2f}x"
            )


if __name__ == "__main__":
    main()
