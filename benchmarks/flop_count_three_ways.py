"""FLOPs three ways at GPT-2-small width: analytic vs FlopCounterMode vs fvcore, T = 1K .. 1M.

For GPT-2 small (models/gpt2-small.yaml) with its mixer swapped for each of a few others, prints per
length the analytic dense forward FLOPs, each counter's difference from its reference (see
archsearch.profiling.flops), what fvcore as shipped misses, and the wall time of each counter.
Everything runs on the meta device: nothing is allocated, so 1M tokens take under a second.
Printing only, no assertions.

Usage: python benchmarks/flop_count_three_ways.py [MODEL.yaml ...]   (default: the GPT-2 variants)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, load_model_config
from archsearch.profiling.flops import FlopsComparison, compare_flops

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = (1024, 8192, 65536, 1 << 20)

#: GPT-2 small with its softmax layers replaced by each of these mixers (12 heads where used)
MIXERS: dict[str, dict[str, object]] = {
    "softmax": {"kind": "softmax", "n_heads": 12, "bias": True},
    "sliding_window": {"kind": "sliding_window", "n_heads": 12, "window": 1024},
    "s2attn": {"kind": "s2attn", "n_heads": 12, "group_size": 1024},
    "ecp": {"kind": "ecp", "n_heads": 12, "segment_len": 1024},
    "combiner": {"kind": "combiner", "n_heads": 12, "variant": "fixed", "block_size": 1024},
    "hsm": {"kind": "hsm", "mixing": "ab"},
}


def gpt2_variants() -> list[ModelConfig]:
    base = load_model_config(ROOT / "models" / "gpt2-small.yaml")
    out = []
    for name, params in MIXERS.items():
        fields = dict(params)
        mixer = mixer_config(str(fields.pop("kind")), **fields)
        layers = tuple(BlockConfig(mixer=mixer, mlp_ratio=b.mlp_ratio) for b in base.layers)
        out.append(base.replace(name=f"gpt2-small/{name}", layers=layers))
    return out


def _pct(c: FlopsComparison, name: str) -> str:
    r = c.counters.get(name)
    if r is None or r.rel_diff is None:
        return "failed"
    return f"{100 * r.rel_diff:+.3f}%"


def _gf(flops: int) -> str:
    """GFLOPs: 4 significant digits, whole numbers from 10,000 up."""
    g = flops / 1e9
    return f"{g:,.0f}" if g >= 1e4 else f"{g:.4g}"


def _secs(c: FlopsComparison, name: str) -> str:
    r = c.counters.get(name)
    return f"{r.seconds:.2f}" if r is not None else "-"


def row(cfg: ModelConfig, T: int) -> str:
    try:
        cfg.check_seq_len(T)
    except Exception as e:  # e.g. a fixed window length (v3_compress)
        return f"{cfg.name:<26}{T:>10,}  skipped: {e}"
    c = compare_flops(cfg, T)
    a = c.analytic
    return (
        f"{cfg.name:<26}{T:>10,}{_gf(a.dense):>12}{_gf(a.core_dense):>12}"
        f"{_pct(c, 'fcm'):>10}{_pct(c, 'fcm_fwd_bwd'):>10}{_pct(c, 'fvcore'):>10}"
        f"{_pct(c, 'fvcore_default'):>10}{_gf(c.missed_by_fvcore_default or 0):>12}"
        f"   {a.seconds:.4f} {_secs(c, 'fcm')} {_secs(c, 'fcm_fwd_bwd')} "
        f"{_secs(c, 'fvcore')} {_secs(c, 'fvcore_default')}"
        + ("" if c.ok else "   DIFFERS: " + " | ".join(c.reasons))
    )


def main(paths: list[str]) -> None:
    cfgs = [load_model_config(p) for p in paths] if paths else gpt2_variants()
    print(f"torch {torch.__version__}; every count on the meta device (nothing allocated)")
    print(
        "diffs: FlopCounterMode forward (matmul + elementwise mixing) and fvcore + our handles vs"
        " analytic dense; FlopCounterMode forward+backward vs forward by-op × (1 + backward"
        " factor); fvcore as shipped (2 × its MACs) vs analytic dense"
    )
    print(
        f"{'model':<26}{'T':>10}{'dense GF':>12}{'core GF':>12}{'FCM':>10}{'FCM f+b':>10}"
        f"{'fvcore':>10}{'shipped':>10}{'missed GF':>12}   seconds: analytic FCM FCM-f+b fvcore"
        " shipped"
    )
    for cfg in cfgs:
        for T in LENGTHS:
            print(row(cfg.replace(max_seq_len=max(cfg.max_seq_len, T)), T), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
