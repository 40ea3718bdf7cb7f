"""Hybrid HSM/softmax stacks: placements, the all-softmax limit, FLOPs = sum of layers, and
parameter matching."""

import dataclasses
from pathlib import Path

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.mixers import mixer_config
from archsearch.model.config import (
    BlockConfig,
    ModelConfig,
    dump_model_config,
    load_model_config,
    parse_model_config,
)
from archsearch.model.costs import model_cost
from archsearch.model.hybrid import PLACEMENTS, hybrid_layers, match_params, softmax_positions
from archsearch.model.transformer import build_model, count_params
from archsearch.profiling.counter import count_flops

ROOT = Path(__file__).resolve().parents[2]
HSM = BlockConfig(mixer=mixer_config("hsm", coverage="cycle"))
SOFT = BlockConfig(mixer=mixer_config("softmax", n_heads=2))


@pytest.mark.parametrize(
    ("n", "k", "placement", "want"),
    [
        (6, 1, "first", (0,)),
        (6, 2, "last", (4, 5)),
        (6, 1, "middle", (2,)),
        (6, 2, "middle", (2, 3)),
        (7, 3, "middle", (2, 3, 4)),
        (6, 2, "interleave", (2, 5)),  # every 3rd layer
        (12, 3, "interleave", (3, 7, 11)),  # every 4th layer
        (12, 1, "interleave", (11,)),
        (5, 2, "interleave", (1, 4)),
        (6, 0, "middle", ()),
        (4, 4, "first", (0, 1, 2, 3)),
    ],
)
def test_placements(n, k, placement, want):
    assert softmax_positions(n, k, placement) == want


def test_every_sampled_pair_gives_a_valid_stack():
    # the search samples n_softmax and placement independently; every pair must build
    for n in range(1, 13):
        for k in range(n + 1):
            for placement in (p for p in PLACEMENTS if p != "explicit"):
                pos = softmax_positions(n, k, placement)
                assert len(pos) == k and len(set(pos)) == k, (n, k, placement)
                assert all(0 <= p < n for p in pos) and list(pos) == sorted(pos)
                layers = hybrid_layers(n, HSM, SOFT, k, placement)
                assert [i for i, b in enumerate(layers) if b is SOFT] == list(pos)


def test_interleave_every_and_explicit_positions():
    assert softmax_positions(7, None, "interleave", every=3) == (2, 5)
    assert softmax_positions(7, 2, "interleave", every=3) == (2, 5)
    assert softmax_positions(6, None, "explicit", positions=[4, 1]) == (1, 4)
    layers = hybrid_layers(4, HSM, SOFT, None, "explicit", positions=[0, 3])
    assert [b.mixer.kind for b in layers] == ["softmax", "hsm", "hsm", "softmax"]


@pytest.mark.parametrize(
    ("args", "kwargs", "field", "allowed"),
    [
        ((6, 7, "first"), {}, "n_softmax", "an integer in [0, n_layers=6]"),
        ((6, None, "last"), {}, "n_softmax", "an integer in [0, n_layers=6]"),
        ((6, 1, "top"), {}, "placement", "one of first, last, middle, interleave, explicit"),
        ((6, 3, "interleave"), {"every": 4}, "n_softmax", "1 (what every=4 gives) or null"),
        ((6, None, "interleave"), {"every": 0}, "every", "an integer >= 1"),
        ((6, None, "explicit"), {"positions": [1, 6]}, "positions", "distinct layer indices"),
        ((6, None, "explicit"), {"positions": [1, 1]}, "positions", "distinct layer indices"),
        ((6, None, "explicit"), {}, "positions", "a list of layer indices"),
        ((0, 0, "first"), {}, "n_layers", "an integer >= 1"),
    ],
)
def test_bad_hybrid_arguments_name_the_field(args, kwargs, field, allowed):
    with pytest.raises(ConfigError) as info:
        softmax_positions(*args, **kwargs)
    assert info.value.field == field
    assert allowed in str(info.value)


def _cfg(layers, **kw) -> ModelConfig:
    return ModelConfig(d_model=16, max_seq_len=64, layers=tuple(layers), **kw)


@pytest.mark.parametrize("placement", ["first", "last", "middle", "interleave"])
def test_all_softmax_hybrid_equals_the_softmax_model(placement):
    # architectures.md §4.7 "hybrid limit": with every layer softmax the hybrid is the GPT
    # baseline; built from the helper, loaded with the baseline's weights, same logits
    hsm = BlockConfig(mixer=mixer_config("hsm", coverage="cycle", mixing="pair_softmax", n_heads=2))
    gpt = _cfg([SOFT] * 4, pos_encoding="learned")
    hybrid = _cfg(hybrid_layers(4, hsm, SOFT, 4, placement), pos_encoding="learned")
    assert hybrid == gpt
    torch.manual_seed(0)
    a = build_model(gpt).double()
    b = build_model(hybrid).double()
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, 256, (2, 24))
    torch.testing.assert_close(b(idx), a(idx), rtol=1e-12, atol=1e-12)
    # one HSM layer fewer in the limit is not the baseline (the comparison can fail)
    near = _cfg(hybrid_layers(4, hsm, SOFT, 3, placement), pos_encoding="learned")
    c = build_model(near).double()
    c.load_state_dict(a.state_dict())  # pair_softmax has the same Q/K/V/O names
    assert not torch.allclose(c(idx), a(idx))


def _count_on_meta(module, *shape: int, dtype: torch.dtype = torch.float32) -> int:
    with torch.device("meta"):
        x = torch.zeros(*shape, dtype=dtype)
    return count_flops(lambda: module(x)).total


def test_hybrid_flops_are_the_sum_of_its_layers():
    layers = hybrid_layers(
        6,
        BlockConfig(mixer=mixer_config("hsm", coverage="cycle", mixing="gated"), mlp_ratio=5.0),
        BlockConfig(mixer=mixer_config("softmax", n_heads=4)),
        2,
        "interleave",
    )
    cfg = ModelConfig(d_model=32, max_seq_len=512, layers=layers)
    T = 512
    cost = model_cost(cfg, T)
    assert cost.forward_dense == sum(lc.dense for lc in cost.layers) + cost.head
    model = build_model(cfg, device="meta")
    per_block = [_count_on_meta(block, 1, T, 32) for block in model.blocks]
    assert per_block == [lc.mixer.matmul_dense + lc.mlp for lc in cost.layers]
    assert (
        _count_on_meta(model, 1, T, dtype=torch.long)
        == sum(per_block) + cost.head
        == cost.counter_visible
    )
    # and the softmax layers are the quadratic ones
    kinds = [lc.kind for lc in cost.layers]
    assert kinds == ["hsm", "hsm", "softmax", "hsm", "hsm", "softmax"]


def test_match_params_widens_only_hsm_mlps_to_the_reference_count():
    kw = {"d_model": 64, "max_seq_len": 256, "vocab_size": 256}
    soft = BlockConfig(mixer=mixer_config("softmax", n_heads=4))
    gpt = ModelConfig(layers=(soft,) * 6, **kw)
    for n_softmax in (0, 1, 2):
        hybrid = ModelConfig(layers=hybrid_layers(6, HSM, soft, n_softmax, "middle"), **kw)
        matched = match_params(hybrid, gpt)
        ratios = {b.mixer.kind: b.mlp_ratio for b in matched.layers}
        if n_softmax:
            assert ratios["softmax"] == 4.0
        # the (a,b) mixer frees 4·D² − 2·D per layer: the MLP gets 6·D − 1 hidden units
        assert ratios["hsm"] * 64 == 6 * 64 - 1
        assert count_params(matched)["total"] == count_params(gpt)["total"]


def test_match_params_is_the_closest_width():
    # width 48 with bias: no whole hidden width matches exactly, so check optimality
    kw = {"d_model": 48, "max_seq_len": 128, "bias": True}
    ref = ModelConfig(layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=4)),) * 3, **kw)
    cfg = ModelConfig(
        layers=(BlockConfig(mixer=mixer_config("hsm", coverage="cycle", mixing="gated")),) * 2
        + (BlockConfig(mixer=mixer_config("hsm", coverage="cycle", base=3)),),
        **kw,
    )
    matched = match_params(cfg, ref)
    target = count_params(ref)["total"]
    got = count_params(matched)["total"]
    h = round(matched.layers[0].mlp_ratio * 48)
    gaps = []
    for dh in (-1, 0, 1):
        layers = tuple(dataclasses.replace(b, mlp_ratio=(h + dh) / 48) for b in matched.layers)
        gaps.append(abs(count_params(matched.replace(layers=layers))["total"] - target))
    assert gaps[1] == abs(got - target) == min(gaps)
    assert abs(got - target) <= 3 * (2 * 48 + 1) / 2  # at most half a step of 3 MLPs
    assert abs(got - target) / target < 1e-3


def test_match_params_needs_a_layer_to_widen():
    with pytest.raises(ConfigError, match=r"widen: got \['hsm'\]; allowed: .*: softmax"):
        match_params(_cfg([SOFT]), _cfg([SOFT] * 2))


def test_hybrid_dumps_with_repeat_and_round_trips():
    layers = hybrid_layers(6, HSM, SOFT, 1, "middle")
    cfg = _cfg(layers)
    text = dump_model_config(cfg)
    assert text.count("repeat: 2") == 1 and text.count("repeat: 3") == 1
    assert parse_model_config(text) == cfg


def test_example_hybrid_yaml_is_parameter_matched():
    cfg = load_model_config(ROOT / "models" / "hsm-hybrid-6l.yaml")
    kinds = [b.mixer.kind for b in cfg.layers]
    assert kinds.count("hsm") == 5 and kinds.count("softmax") == 1
    soft = next(b for b in cfg.layers if b.mixer.kind == "softmax")
    gpt = cfg.replace(layers=(soft,) * 6)
    assert match_params(cfg, gpt) == cfg
    assert count_params(cfg)["total"] == count_params(gpt)["total"] == 19_012_096
