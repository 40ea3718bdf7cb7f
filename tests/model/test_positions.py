"""Position encodings: learned absolute positions (Combiner's official setup) and the per-layer
RoPE opt-out of attention mixers."""

from pathlib import Path

import torch

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, load_model_config
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model, count_params

ROOT = Path(__file__).resolve().parents[2]


def _combiner(pos_encoding: str, **mixer) -> ModelConfig:
    m = mixer_config("combiner", n_heads=2, variant="fixed", block_size=4, **mixer)
    return ModelConfig(
        d_model=16,
        vocab_size=32,
        max_seq_len=32,
        pos_encoding=pos_encoding,
        layers=(BlockConfig(mixer=m),) * 2,
    )


def test_shipped_combiner_examples_and_space_use_learned_positions():
    assert load_model_config(ROOT / "models/combiner-fixed.yaml").pos_encoding == "learned"
    assert load_model_config(ROOT / "models/combiner-fixed-rope.yaml").pos_encoding == "rope"
    text = (ROOT / "search_spaces/combiner.yaml").read_text()
    assert "pos_encoding: learned" in text


def test_learned_positions_add_parameters_not_flops():
    learned, rope = _combiner("learned"), _combiner("rope")
    assert count_params(learned)["total"] == count_params(rope)["total"] + 32 * 16
    assert count_params(learned)["non_embedding"] == count_params(rope)["non_embedding"]
    # the position add is an embedding look-up + addition: not counted (FLOP conventions)
    assert model_cost(learned, 24).forward_exact == model_cost(rope, 24).forward_exact


def test_abs_pos_combiner_is_causal_and_trains():
    torch.manual_seed(0)
    model = build_model(_combiner("learned")).double()
    idx = torch.randint(0, 32, (2, 24), generator=torch.Generator().manual_seed(0))
    x = model.embed(idx).detach().requires_grad_(True)
    logits = model.logits(model.hidden(x), 24)
    t = 9
    (g,) = torch.autograd.grad(logits[:, t].sum(), x)
    assert torch.count_nonzero(g[:, t + 1 :]) == 0 and torch.count_nonzero(g[:, : t + 1]) > 0
    # positions matter: the same token at two positions gets two embeddings
    same = torch.zeros(1, 2, dtype=torch.long)
    e = model.embed(same)
    assert not torch.equal(e[0, 0], e[0, 1])

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model.loss(idx[:, :-1], idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.8 * first


def test_rope_false_turns_rotary_off_in_that_layer_only():
    x = torch.randn(2, 12, 16, dtype=torch.float64)
    plain = build_model(_combiner("none")).double()
    opted_out = build_model(_combiner("rope", rope=False)).double()
    rotated = build_model(_combiner("rope")).double()
    opted_out.load_state_dict(plain.state_dict())
    rotated.load_state_dict(plain.state_dict())
    torch.testing.assert_close(opted_out.hidden(x), plain.hidden(x), rtol=0, atol=0)
    assert not torch.allclose(rotated.hidden(x), plain.hidden(x))
    assert not opted_out.blocks[0].mixer.use_rope and rotated.blocks[0].mixer.use_rope


def test_rope_false_lifts_the_even_head_width_rule():
    # d = 15/3 = 5 is odd: fine without rotary
    m = mixer_config("softmax", n_heads=3, rope=False)
    ModelConfig(d_model=15, pos_encoding="rope", layers=(BlockConfig(mixer=m),))
