"""V1/V2/V3 (architectures.md §3.3–3.5): kernel vs dense reference, one layer vs the code's
math, limits between the variants, V3's residual fix, checks, and the §3.7 cost table."""

import math

import pytest
import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError
from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, parse_model_config
from archsearch.model.costs import model_cost
from archsearch.model.mh_perceiver import (
    V1Config,
    V2Config,
    V3Config,
    double_attention,
    double_pairs,
)
from archsearch.model.transformer import build_model
from archsearch.ops.rope import apply_rope, rope_cos_sin


def allowed(C, l, n=1):
    """Context row i sees context keys of its own segment; latent a sees [0, C + a]."""
    U, s = C + l, C // n
    out = torch.zeros(U, U, dtype=torch.bool)
    for i in range(U):
        for j in range(U):
            if i < C:
                out[i, j] = j < C and i // s == j // s
            else:
                out[i, j] = j <= i
    return out


@pytest.mark.parametrize(("C", "l", "n"), [(8, 4, 1), (8, 4, 2), (12, 5, 4), (3, 9, 3), (1, 1, 1)])
def test_double_attention_matches_dense_reference(C, l, n):
    q, k, v = (torch.randn(2, 3, C + l, 4, dtype=torch.float64) for _ in range(3))
    mask = allowed(C, l, n)
    s = q @ k.transpose(-1, -2) / 2.0
    want = F.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v
    torch.testing.assert_close(double_attention(q, k, v, C, n), want)
    exact, dense = double_pairs(C, l, n)
    assert exact == int(mask.sum())
    assert dense == C * (C // n) + l * (C + l)


def _cfg(family, T=20, heads=2, layers=2, pos="rope", d=16) -> ModelConfig:
    block = BlockConfig(mixer=mixer_config("softmax", n_heads=heads))
    return ModelConfig(
        d_model=d,
        vocab_size=40,
        max_seq_len=T,
        pos_encoding=pos,
        family=family,
        layers=(block,) * layers,
    )


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    return build_model(cfg).double().eval()


def test_v1_layer_is_the_code_double_attention():
    """One V1 layer against the code's math (``DoubleAttention.forward``): q = Wq x,
    kv = LN_d(RoPE(Wkv x)), q·scale, latent scores masked causally on the latent part only,
    context scores unmasked, values = the same LN_d(RoPE(kv)), Wo on the concatenation."""
    T, l, H, d = 14, 5, 2, 8
    m = _model(_cfg(V1Config(n_latents=l), T=T, heads=H))
    attn = m.blocks[0].attn
    x = torch.randn(2, T, 16, dtype=torch.float64)
    h = T - l
    q = attn.q(x).view(2, T, H, d).transpose(1, 2)
    kv = attn.kv(x).view(2, T, H, d).transpose(1, 2)
    cos, sin = rope_cos_sin(torch.arange(T), d, 10000.0, torch.float64)
    q, kv = apply_rope(q, cos, sin), apply_rope(kv, cos, sin)
    lkv = attn.kv_norm(kv)
    q = q * d**-0.5
    lat = q[:, :, h:] @ lkv.transpose(-1, -2)
    lat[..., h:] = lat[..., h:].masked_fill(torch.ones(l, l).triu(1).bool(), float("-inf"))
    ctx = q[:, :, :h] @ lkv[:, :, :h].transpose(-1, -2)
    out = torch.cat([ctx.softmax(-1) @ lkv[:, :, :h], lat.softmax(-1) @ lkv], dim=2)
    want = attn.out(out.transpose(1, 2).reshape(2, T, 16))
    torch.testing.assert_close(attn(x), want)


def test_v2_with_one_segment_is_v1_with_rope_in_layer_0():
    T = 18
    v1 = _model(_cfg(V1Config(n_latents=6, rope_all_layers=False), T=T))
    v2 = _model(_cfg(V2Config(n_latents=6, n_ctx_segments=1), T=T), seed=1)
    v2.load_state_dict(v1.state_dict())
    idx = torch.randint(0, 40, (2, T))
    torch.testing.assert_close(v2(idx), v1(idx), rtol=1e-12, atol=1e-12)
    # and segments do change the result
    v2b = _model(_cfg(V2Config(n_latents=6, n_ctx_segments=3), T=T))
    v2b.load_state_dict(v1.state_dict())
    assert not torch.allclose(v2b(idx), v1(idx))


def test_v3_identity_compression_with_the_code_residual_is_v1():
    """With p = h, an identity sequence projection and the code's residual x[:, :p+l] (= x when
    p = h), V3 is V1 with RoPE in layer 0 only: the slots are the context rows."""
    T, l = 16, 5
    h = T - l
    v1 = _model(_cfg(V1Config(n_latents=l, rope_all_layers=False), T=T))
    v3 = _model(_cfg(V3Config(n_latents=l, compressed_len=h, aligned_residual=False), T=T))
    sd = dict(v1.state_dict())
    sd["blocks.0.attn.compress.weight"] = torch.eye(h, dtype=torch.float64)
    sd["blocks.0.attn.compress.bias"] = torch.zeros(h, dtype=torch.float64)
    v3.load_state_dict(sd)
    idx = torch.randint(0, 40, (2, T))
    torch.testing.assert_close(v3(idx), v1(idx), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("aligned", [True, False])
def test_v3_layer0_residual_fix(aligned):
    """§3.5: the code adds x[:, :p+l], so latent a gets the residual of position p + a; the
    fix gives latent a its own x[h + a] and the slots no residual. Checked with the attention
    and MLP branches switched off, so the block output is the residual alone."""
    T, l, p = 20, 6, 5
    h = T - l
    m = _model(_cfg(V3Config(n_latents=l, compressed_len=p, aligned_residual=aligned), T=T))
    block = m.blocks[0]
    with torch.no_grad():
        for lin in (block.attn.out, block.mlp.fc2):
            lin.weight.zero_()
            if lin.bias is not None:
                lin.bias.zero_()
    x = torch.randn(2, T, 16, dtype=torch.float64)
    y = block(x)
    assert y.shape == (2, p + l, 16)
    if aligned:
        torch.testing.assert_close(y[:, p:], x[:, h:], rtol=0, atol=0)
        assert torch.equal(y[:, :p], torch.zeros_like(y[:, :p]))
    else:
        torch.testing.assert_close(y, x[:, : p + l], rtol=0, atol=0)


def test_v3_residual_choice_is_causal_either_way_and_changes_the_model():
    T, l, p = 20, 6, 5
    idx = torch.randint(0, 40, (1, T))
    outs = []
    for aligned in (True, False):
        m = _model(_cfg(V3Config(n_latents=l, compressed_len=p, aligned_residual=aligned), T=T))
        x = m.embed(idx).detach().requires_grad_(True)
        logits = m.logits(m.hidden(x), l)
        for a in range(l):
            (g,) = torch.autograd.grad(logits[0, a].sum(), x, retain_graph=True)
            assert g[0, T - l + a + 1 :].abs().sum() == 0
        outs.append(logits.detach())
    assert not torch.allclose(outs[0], outs[1])


def test_window_checks():
    v3 = _cfg(V3Config(n_latents=6, compressed_len=5), T=20)
    with pytest.raises(ConfigError, match="exactly max_seq_len=20"):
        v3.check_seq_len(24)
    with pytest.raises(ConfigError, match="exactly max_seq_len=20"):
        _model(v3)(torch.randint(0, 40, (1, 16)))
    v2 = _cfg(V2Config(n_latents=6, n_ctx_segments=4), T=64)
    v2.check_seq_len(22)  # h = 16
    with pytest.raises(ConfigError) as info:
        v2.check_seq_len(24)  # h = 18
    assert info.value.field == "family.n_ctx_segments" and "h = T − n_latents = 18" in str(
        info.value
    )
    with pytest.raises(ConfigError, match="less than the sequence length 6"):
        _cfg(V1Config(n_latents=6), T=64).check_seq_len(6)


def test_v1_to_v3_are_not_incremental():
    for fam in (
        V1Config(n_latents=4),
        V2Config(n_latents=4),
        V3Config(n_latents=4, compressed_len=4),
    ):
        m = _model(_cfg(fam, T=12))
        assert not m.supports_decode and not m.can_decode()
        with pytest.raises(NotImplementedError):
            m.init_state(1, torch.float64, "cpu")


def test_costs_follow_the_table():
    """§3.7 per layer, written out independently (K = V: KV projection 2·n·D²)."""
    D, V, T, l, n, p, L = 64, 100, 256, 64, 4, 32, 3
    h, s = T - l, (T - l) // n
    base = "d_model: 64\nvocab_size: 100\nmax_seq_len: 256\n"
    layers = "layers:\n  - {repeat: 3, mixer: {kind: softmax, n_heads: 4}}\n"

    def cost(family):
        return model_cost(parse_model_config(base + f"family: {family}\n" + layers), T)

    ffn = 4 * 4 * D * D  # per row, f = 4
    head = 2 * l * D * V
    v1 = cost(f"{{kind: v1_double, n_latents: {l}}}")
    per = 6 * T * D * D + 4 * D * (h * h + l * h + l * (l + 1) // 2) + T * ffn
    assert v1.forward_exact == L * per + head
    assert v1.layers[0].mixer.core_dense == 4 * D * (h * h + l * T)
    v2 = cost(f"{{kind: v2_split, n_latents: {l}, n_ctx_segments: {n}}}")
    per = 6 * T * D * D + 4 * D * (h * s + l * h + l * (l + 1) // 2) + T * ffn
    assert v2.forward_exact == L * per + head
    assert v2.layers[0].mixer.core_dense == 4 * D * (h * s + l * T)
    v3 = cost(f"{{kind: v3_compress, n_latents: {l}, compressed_len: {p}}}")
    # layer 0: Q and K=V on T rows, sequence projection 2·h·p·D, Wo on the p + l rows it keeps
    first = (
        4 * T * D * D
        + 2 * h * p * D
        + 2 * (p + l) * D * D
        + 4 * D * (h * h + l * h + l * (l + 1) // 2)
        + (p + l) * ffn
    )
    later = 6 * (p + l) * D * D + 4 * D * (p * p + l * p + l * (l + 1) // 2) + (p + l) * ffn
    assert v3.forward_exact == first + (L - 1) * later + head
    assert v3.layers[1].mixer.core_dense == 4 * D * (p * p + l * (p + l))
    assert [lc.seq_len for lc in v3.layers] == [p + l] * L
    assert v1.decode_state == v2.decode_state == v3.decode_state == 0
    # unshared K and V: KV projection 4·n·D² instead of 2·n·D²
    v1u = cost(f"{{kind: v1_double, n_latents: {l}, kv_shared: false}}")
    assert v1u.forward_exact - v1.forward_exact == L * 2 * T * D * D


def test_context_rows_attend_only_context():
    """§3.10: perturbing a latent token leaves every context output and every earlier latent
    unchanged (checked on the hidden rows, V1 and V2)."""
    T, l = 18, 6
    for fam in (V1Config(n_latents=l), V2Config(n_latents=l, n_ctx_segments=3)):
        m = _model(_cfg(fam, T=T))
        idx = torch.randint(0, 40, (2, T))
        base = m.hidden(m.embed(idx))
        for a in (0, 3, l - 1):
            idx2 = idx.clone()
            idx2[:, T - l + a] = (idx2[:, T - l + a] + 1) % 40
            out = m.hidden(m.embed(idx2))
            assert torch.equal(out[:, : T - l + a], base[:, : T - l + a])
            assert not torch.equal(out[:, T - l + a], base[:, T - l + a])
        assert math.isfinite(base.sum().item())
