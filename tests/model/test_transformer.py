"""The decoder LM: GPT-2 small parameter count and FLOPs, causality, options, limit cases."""

from pathlib import Path

import pytest
import torch

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, load_model_config
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model, count_params
from archsearch.profiling.counter import count_flops

ROOT = Path(__file__).resolve().parents[2]


def _count_on_meta(cfg: ModelConfig, T: int) -> int:
    model = build_model(cfg, device="meta").eval()  # counter_visible: the inference forward
    with torch.device("meta"):
        idx = torch.zeros(1, T, dtype=torch.long)
    return count_flops(lambda: model(idx)).total


def test_gpt2_small_parameters_and_flops():
    cfg = load_model_config(ROOT / "models" / "gpt2-small.yaml")
    assert count_params(cfg)["total"] == 124_439_808  # the published GPT-2 small count
    cost = model_cost(cfg, 1024)
    counted = _count_on_meta(cfg, 1024)
    assert abs(counted - cost.forward_dense) / counted < 0.01
    assert counted == cost.counter_visible  # in fact exact
    # the hand formula: 12 layers x (8TD² + 4DT² + 16TD²) + 2TDV
    T, D, V = 1024, 768, 50257
    assert (
        cost.forward_dense == 12 * (8 * T * D * D + 4 * D * T * T + 16 * T * D * D) + 2 * T * D * V
    )


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_model_counts_as_analysed(path):
    cfg = load_model_config(path)
    T = min(cfg.max_seq_len, 4096)
    assert _count_on_meta(cfg, T) == model_cost(cfg, T).counter_visible


def _tiny(**overrides) -> ModelConfig:
    layers = overrides.pop(
        "layers",
        (
            BlockConfig(mixer=mixer_config("sliding_window", n_heads=2, window=5)),
            BlockConfig(mixer=mixer_config("s2attn", n_heads=2, group_size=4), mlp_ratio=2.0),
            BlockConfig(mixer=mixer_config("softmax", n_heads=2)),
        ),
    )
    return ModelConfig(d_model=16, max_seq_len=64, layers=layers, **overrides)


@pytest.mark.parametrize("pos", ["rope", "learned", "none"])
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_forward_loss_and_causality(pos, norm):
    torch.manual_seed(0)
    model = build_model(_tiny(pos_encoding=pos, norm=norm)).double()
    idx = torch.randint(0, 256, (2, 33))
    logits = model(idx)
    assert logits.shape == (2, 33, 256)
    loss = model.loss(idx[:, :-1], idx[:, 1:])
    assert torch.isfinite(loss)
    loss.backward()
    idx2 = idx.clone()
    idx2[:, 20:] = torch.randint(0, 256, (2, 13))
    assert torch.equal(model(idx2)[:, :20], logits[:, :20])
    assert not torch.equal(model(idx2)[:, 20:], logits[:, 20:])


def test_tied_and_untied_heads():
    tied, untied = _tiny(), _tiny(tie_embeddings=False)
    m = build_model(tied)
    assert m.head.weight is m.tok_emb.weight
    assert count_params(untied)["total"] - count_params(tied)["total"] == 256 * 16


def test_seeded_build_is_deterministic():
    idx = torch.randint(0, 256, (1, 17))
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        outs.append(build_model(_tiny())(idx))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_model_level_limit_s2attn_one_group_unshifted_equals_softmax():
    T = 24
    soft = _tiny(layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=2)),) * 2)
    s2 = _tiny(
        layers=(
            BlockConfig(mixer=mixer_config("s2attn", n_heads=2, group_size=T, shifted_heads=0)),
        )
        * 2
    )
    torch.manual_seed(0)
    a = build_model(soft).double()
    b = build_model(s2).double()
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, 256, (2, T))
    torch.testing.assert_close(a(idx), b(idx), rtol=1e-12, atol=1e-12)


def test_hybrid_cost_is_sum_of_layers():
    cfg = _tiny()
    cost = model_cost(cfg, 32)
    assert cost.forward_dense == sum(lc.dense for lc in cost.layers) + cost.head
    assert [lc.kind for lc in cost.layers] == ["sliding_window", "s2attn", "softmax"]
    assert cost.layers[1].mlp == 4 * 32 * 16 * 32  # mlp_ratio 2 -> hidden 32
    assert _count_on_meta(cfg, 32) == cost.counter_visible


def test_gpt2_init_scales_residual_output_projections():
    """Residual outputs (mixer.out, mlp.fc2) get std/sqrt(2·n_layers); other linears std."""
    cfg = ModelConfig(
        d_model=64, layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=2)),) * 8
    )
    torch.manual_seed(0)
    model = build_model(cfg)
    std, scaled = cfg.init_std, cfg.init_std / (2 * 8) ** 0.5
    for block in model.blocks:
        assert abs(block.mixer.out.weight.std().item() - scaled) < 0.15 * scaled
        assert abs(block.mlp.fc2.weight.std().item() - scaled) < 0.15 * scaled
        assert abs(block.mlp.fc1.weight.std().item() - std) < 0.15 * std
        assert abs(block.mixer.qkv.weight.std().item() - std) < 0.15 * std
