"""S2-Attn's LongLoRA recipe (``inference: full``): train with S2-Attn, infer with full."""

import pytest
import torch

from archsearch.mixers import MixerContext, build_mixer, get_mixer, mixer_config, mixer_label
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model
from archsearch.profiling.counter import count_flops
from archsearch.profiling.flops import compare_flops
from archsearch.search.results import model_label

D, T, G = 16, 32, 8
CTX = MixerContext(d_model=D, rope=True, max_seq_len=64)


def _pair(**extra):
    recipe = mixer_config("s2attn", n_heads=2, group_size=G, inference="full", **extra)
    torch.manual_seed(0)
    a = build_mixer(recipe, CTX).double()
    return recipe, a


def _x(T: int = T) -> torch.Tensor:
    return torch.randn(2, T, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_eval_mode_equals_softmax_with_the_same_weights():
    _, a = _pair()
    soft = build_mixer(mixer_config("softmax", n_heads=2), CTX).double()
    soft.load_state_dict(a.state_dict())
    a.eval()
    torch.testing.assert_close(a(_x()), soft(_x()), rtol=1e-12, atol=1e-12)


def test_train_mode_equals_pure_s2attn_with_the_same_weights():
    _, a = _pair()
    pure = build_mixer(mixer_config("s2attn", n_heads=2, group_size=G), CTX).double()
    pure.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.train()(_x()), pure(_x()), rtol=0, atol=0)
    # and S2 at inference really differs from full attention here (G < T)
    assert not torch.allclose(pure.eval()(_x()), a.eval()(_x()))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_causal_in_both_modes(mode):
    _, a = _pair()
    a.train(mode == "train")
    x = _x().requires_grad_(True)
    y = a(x)
    t = 13
    (g,) = torch.autograd.grad(y[:, t].sum(), x)
    assert torch.count_nonzero(g[:, t + 1 :]) == 0
    assert torch.count_nonzero(g[:, : t + 1]) > 0


def test_decodes_with_a_kv_cache_only_for_the_recipe():
    cls = get_mixer("s2attn")
    recipe, a = _pair()
    assert cls.supports_decode_for(recipe)
    assert not cls.supports_decode_for(mixer_config("s2attn", n_heads=2, group_size=G))
    pure = build_mixer(mixer_config("s2attn", n_heads=2, group_size=G), CTX)
    with pytest.raises(NotImplementedError, match="inference: full"):
        pure.init_state(1, dtype=torch.float32)
    a.eval()
    x = _x(12)
    with torch.no_grad():
        want = a(x)
        state = a.init_state(2, dtype=x.dtype, max_len=12)
        got = []
        for t in range(12):
            y, state = a.step(x[:, t : t + 1], state)
            got.append(y)
        got = torch.cat(got, dim=1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert state["k"].numel() + state["v"].numel() == 2 * cls.decode_state(recipe, CTX, 12)


def test_costs_per_mode():
    cls = get_mixer("s2attn")
    recipe = mixer_config("s2attn", n_heads=2, group_size=G, inference="full")
    pure = mixer_config("s2attn", n_heads=2, group_size=G)
    soft = get_mixer("softmax")
    full = soft.flops(mixer_config("softmax", n_heads=2), CTX, T)
    assert cls.flops(recipe, CTX, T) == cls.flops(pure, CTX, T)  # training follows S2
    assert cls.inference_flops(recipe, CTX, T) == full  # inference follows full attention
    assert cls.inference_flops(pure, CTX, T) == cls.flops(pure, CTX, T)
    assert cls.decode_state(recipe, CTX, T) == 2 * D * T  # the KV cache
    assert cls.decode_state(pure, CTX, T) == 2 * D * G


def _model(inference: str) -> ModelConfig:
    m = mixer_config("s2attn", n_heads=2, group_size=G, inference=inference)
    return ModelConfig(d_model=D, vocab_size=32, max_seq_len=64, layers=(BlockConfig(mixer=m),) * 2)


def test_model_cost_splits_inference_and_training_forward():
    recipe, pure = model_cost(_model("full"), T), model_cost(_model("s2"), T)
    soft = model_cost(
        _model("s2").replace(layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=2)),) * 2), T
    )
    assert recipe.forward_exact == soft.forward_exact  # flops_fwd: full attention
    assert recipe.counter_visible == soft.counter_visible
    assert recipe.training_forward_exact == pure.forward_exact  # training: S2
    assert recipe.training_exact == 3 * pure.forward_exact == pure.training_exact
    assert recipe.training_counter_visible == pure.counter_visible
    assert recipe.decode_state == soft.decode_state
    assert pure.training_forward_exact == pure.forward_exact  # one forward for the pure model


@pytest.mark.parametrize("inference", ["full", "s2"])
def test_counted_flops_match_each_mode(inference):
    cfg = _model(inference)
    cost = model_cost(cfg, T)
    model = build_model(cfg, device="meta")
    with torch.device("meta"):
        idx = torch.zeros(2, T, dtype=torch.long)
    assert count_flops(lambda: model.eval()(idx)).total == 2 * cost.counter_visible
    assert count_flops(lambda: model.train()(idx)).total == 2 * cost.training_counter_visible
    cmp = compare_flops(cfg, T, fvcore=False)
    assert all(c.ok for c in cmp.counters.values()), cmp.render()


def test_model_decodes_token_by_token():
    model = build_model(_model("full")).double().eval()
    assert model.can_decode()
    idx = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(idx)
        state = model.init_decode_state(2, max_len=12)
        got = []
        for t in range(12):
            y, state = model.step(idx[:, t : t + 1], state)
            got.append(y)
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=1e-10, atol=1e-10)
    assert not build_model(_model("s2")).can_decode()


def test_label_says_which_recipe():
    full = mixer_config("s2attn", n_heads=2, group_size=G, inference="full")
    assert full.label == "s2attn(infer=full)"
    assert mixer_config("s2attn", n_heads=2, group_size=G).label == "s2attn"
    assert mixer_config("softmax").label == "softmax"
    assert mixer_label(full.to_dict()) == "s2attn(infer=full)"
    assert mixer_label({"kind": "no_such_mixer"}) == "no_such_mixer"
    model = {"layers": [{"mixer": full.to_dict()}, {"mixer": {"kind": "softmax"}}]}
    assert model_label(model, mixer_label) == "s2attn(infer=full)+softmax"
    assert model_label(model) == "s2attn+softmax"  # the torch-free default: kinds only


def test_bad_inference_value_names_the_field():
    from archsearch.errors import ConfigError

    with pytest.raises(ConfigError, match="inference"):
        mixer_config("s2attn", n_heads=2, group_size=G, inference="dense")
