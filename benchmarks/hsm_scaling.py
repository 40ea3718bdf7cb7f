"""HSM acceptance figures: how the mixing FLOPs grow with T, hybrids, parameter matching.

Prints, for a 12-layer pure-HSM model (D = 768) and each mixing function, the forward FLOPs of its
mixing layers at T = 1K … 64K, analytic and counted by FlopCounterMode on the real modules (meta
device; elementwise ops counted too, except for pair_softmax whose score scaling is softmax work),
and the fitted log-log slope; then a hybrid's counted FLOPs against the sum of its layers; then
parameter matching against a softmax stack.
Usage: python benchmarks/hsm_scaling.py
"""

from __future__ import annotations

from pathlib import Path

import torch

from archsearch.mixers import get_mixer, mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, load_model_config
from archsearch.model.costs import model_cost
from archsearch.model.hybrid import hybrid_layers, match_params
from archsearch.model.transformer import build_model, count_params
from archsearch.profiling.counter import count_flops
from archsearch.profiling.scaling import loglog_slope

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]
D = 768


def counted_mixing_flops(cfg: ModelConfig, T: int) -> int:
    model = build_model(cfg, device="meta")
    with torch.device("meta"):
        x = torch.empty(1, T, cfg.d_model)
    total = 0
    for block in model.blocks:
        elementwise = block.mixer.cfg.mixing != "pair_softmax"
        total += count_flops(lambda b=block: b.mixer(x), elementwise=elementwise).total
    return total


def scaling() -> None:
    print(f"pure-HSM mixing layers, 12 layers, D = {D}, max_seq_len = 65536 (forward FLOPs)")
    print(
        f"{'mixing':<14}{'T':>7}{'analytic exact':>20}{'analytic, counter view':>24}{'counted':>20}"
    )
    for mixing in ("ab", "gated", "pair_softmax", "pair_mlp"):
        layer = BlockConfig(mixer=mixer_config("hsm", mixing=mixing, n_heads=12))
        cfg = ModelConfig(d_model=D, max_seq_len=65536, layers=(layer,) * 12)
        analytic, counted = [], []
        for T in LENGTHS:
            layers = model_cost(cfg, T).layers
            a = sum(lc.mixer.exact for lc in layers)
            want = sum(
                lc.mixer.matmul_dense if mixing == "pair_softmax" else lc.mixer.dense
                for lc in layers
            )
            c = counted_mixing_flops(cfg, T)
            analytic.append(a)
            counted.append(c)
            print(
                f"{mixing:<14}{T:>7}{a:>20,}{want:>24,}{c:>20,}{'' if c == want else '  MISMATCH'}"
            )
        sa, sc = loglog_slope(LENGTHS, analytic), loglog_slope(LENGTHS, counted)
        print(
            f"{mixing:<14} fitted log-log slope 1K-64K: analytic exact {sa:.5f}, counted {sc:.5f}"
        )
    f = get_mixer("hsm").flops(mixer_config("hsm"), cfg.mixer_context(0), 2048)
    print(f"ab layer at T = 2048, D = {D}: {f.elementwise:,} FLOPs = 3·T·D ({f.exact / 1e9:.4f} G)")


def hybrid() -> None:
    cfg = load_model_config(ROOT / "models" / "hsm-hybrid-6l.yaml")
    T = 4096
    cost = model_cost(cfg, T)
    model = build_model(cfg, device="meta")
    per_block = []
    for block in model.blocks:
        with torch.device("meta"):
            x = torch.empty(1, T, cfg.d_model)
        per_block.append(count_flops(lambda b=block, x=x: b(x)).total)
    with torch.device("meta"):
        idx = torch.zeros(1, T, dtype=torch.long)
    whole = count_flops(lambda: model(idx)).total
    print(f"\n{cfg.name} at T = {T}: counted whole model {whole:,}")
    print(f"  sum of counted blocks + LM head  {sum(per_block) + cost.head:,}")
    print(f"  analytic (matmul part)           {cost.counter_visible:,}")
    print(f"  analytic forward, exact          {cost.forward_exact:,} (elementwise included)")


def matching() -> None:
    print("\nparameter matching (match_params: HSM blocks' MLPs widened to one common width)")
    soft = BlockConfig(mixer=mixer_config("softmax", n_heads=12, bias=True))
    kw = {
        "d_model": D,
        "vocab_size": 50257,
        "max_seq_len": 1024,
        "pos_encoding": "learned",
        "bias": True,
        "activation": "gelu_tanh",
    }
    gpt = ModelConfig(layers=(soft,) * 12, **kw)
    ref = count_params(gpt)["total"]
    hsm = BlockConfig(mixer=mixer_config("hsm", bias=True))
    print(f"  reference: 12-layer GPT-2-small-like stack, {ref:,} parameters")
    for n_softmax, placement in ((0, "middle"), (1, "middle"), (3, "interleave")):
        cfg = ModelConfig(layers=hybrid_layers(12, hsm, soft, n_softmax, placement), **kw)
        before = count_params(cfg)["total"]
        matched = match_params(cfg, gpt)
        after = count_params(matched)["total"]
        ratio = next(b.mlp_ratio for b in matched.layers if b.mixer.kind == "hsm")
        print(
            f"  {12 - n_softmax:>2} hsm + {n_softmax} softmax ({placement:<10}): "
            f"unmatched {before:,} ({(before - ref) / ref:+.2%}); HSM mlp_ratio {ratio:.6f} -> "
            f"{after:,} ({(after - ref) / ref:+.2e})"
        )
    shipped = load_model_config(ROOT / "models" / "hsm-hybrid-6l.yaml")
    softb = next(b for b in shipped.layers if b.mixer.kind == "softmax")
    base = count_params(shipped.replace(layers=(softb,) * 6))["total"]
    got = count_params(shipped)["total"]
    print(f"  models/hsm-hybrid-6l.yaml: {got:,} vs its 6-softmax stack {base:,}")


if __name__ == "__main__":
    scaling()
    hybrid()
    matching()
