"""The tiny search space the search tests share (T = 32, width 16/32, 1-2 layers): one text,
with the few fields a test varies as arguments."""

from __future__ import annotations

TRAIN_HALVING = "{budget_tokens: 3072, batch_size: 4, evals: 2, halving: {eta: 2, rungs: 2}}"


def tiny_space(
    name: str = "tiny",
    *,
    heads: str = "[2, 4]",
    hsm: bool = True,
    first_direction: bool = True,
    params_max: int | None = 30000,
    train: str = TRAIN_HALVING,
) -> str:
    """A space of tiny softmax (and HSM) decoders, quality against FLOPs."""
    first = "  - {metric: bits_per_byte, direction: minimize}\n" if first_direction else (
        "  - {metric: bits_per_byte}\n"
    )
    return (
        "version: 1\n"
        f"name: {name}\n"
        "seq_len: 32\n"
        "fixed: {vocab_size: 256, max_seq_len: 32}\n"
        "params:\n"
        "  d_model: {choices: [16, 32]}\n"
        "  n_layers: {low: 1, high: 2}\n"
        "layers:\n"
        "  mix: uniform\n"
        "  mixer:\n"
        f"    softmax: {{n_heads: {{choices: {heads}}}}}\n"
        + ("    hsm: {mixing: ab}\n" if hsm else "")
        + "objectives:\n"
        + first
        + "  - {metric: flops_fwd, direction: minimize}\n"
        + (f"constraints:\n  - {{metric: params, max: {params_max}}}\n" if params_max else "")
        + "task: {name: lm, options: {eval_tokens: 512}}\n"
        f"train: {train}\n"
    )
