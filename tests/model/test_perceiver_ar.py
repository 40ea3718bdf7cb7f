"""PerceiverAR (architectures.md §1): mask alignment, dense reference, the N = M limits, cross
dropout, cached decoding, costs (worked example, linear in M)."""

import math

import pytest
import torch
import torch.nn.functional as F

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, parse_model_config
from archsearch.model.costs import model_cost
from archsearch.model.perceiver_ar import PerceiverARConfig, cross_mask, cross_pairs
from archsearch.model.transformer import build_model
from archsearch.ops.rope import apply_rope, rope_cos_sin
from archsearch.profiling.counter import count_flops
from archsearch.profiling.scaling import loglog_slope


def _cfg(n_latents=6, layers=2, d=16, heads=2, pos="rope", **fam) -> ModelConfig:
    block = BlockConfig(mixer=mixer_config("softmax", n_heads=heads))
    return ModelConfig(
        d_model=d,
        vocab_size=50,
        max_seq_len=64,
        pos_encoding=pos,
        family=PerceiverARConfig(n_latents=n_latents, **fam),
        layers=(block,) * layers,
    )


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    return build_model(cfg).double().eval()


@pytest.mark.parametrize(("N", "M"), [(1, 1), (1, 9), (4, 10), (10, 10), (3, 17)])
def test_cross_mask_row_sums_and_alignment(N, M):
    """§1(e) 3: latent 0 sees exactly M − N + 1 inputs, the last latent sees all M."""
    mask = cross_mask(N, M, "cpu")
    sums = mask.sum(1).tolist()
    assert sums == [M - N + 1 + a for a in range(N)]
    assert sums[0] == M - N + 1 and sums[-1] == M
    # the same as PyTorch's bottom-right causal bias, and unlike SDPA's top-left is_causal
    from torch.nn.attention.bias import causal_lower_right

    assert torch.equal(mask, causal_lower_right(N, M)._materialize())
    top_left = torch.ones(N, M, dtype=torch.bool).tril()
    assert torch.equal(mask, top_left) == (N == M)
    exact, dense = cross_pairs(N, M)
    assert exact == int(mask.sum()) and dense == N * M


def test_every_latent_reads_exactly_its_past():
    """The support of latent a is [0, p_a]: every earlier input matters, no later one does.
    (A top-left mask would pass a pure causality test; it fails this one.)"""
    N, M = 5, 13
    m = _model(_cfg(n_latents=N))
    x = m.embed(torch.randint(0, 50, (1, M))).detach().requires_grad_(True)
    logits = m.logits(m.hidden(x), N)
    for a in range(N):
        (g,) = torch.autograd.grad(logits[0, a].sum(), x, retain_graph=True)
        support = (g[0].abs().sum(-1) > 0).nonzero().flatten().tolist()
        assert support == list(range(M - N + a + 1)), f"latent {a}"


def _dense_cross_reference(m, x_BMD, N):
    """The cross layer written out from §1(b), with the mask built from its formula."""
    c = m.cross
    B, M, D = x_BMD.shape
    H, d, rot = c.n_heads, c.head_dim, c.rot
    z0 = c.z_proj(x_BMD[:, M - N :])
    q = c.q(c.norm_q(z0)).view(B, N, H, d).transpose(1, 2)
    k, v = c.kv(c.norm_kv(x_BMD)).view(B, M, 2, H, d).unbind(2)
    k, v = k.transpose(1, 2), v.transpose(1, 2)

    def rope(t, pos):
        cos, sin = rope_cos_sin(pos, rot, m.cfg.rope_theta, t.dtype)
        return torch.cat([apply_rope(t[..., :rot], cos, sin), t[..., rot:]], dim=-1)

    q, k = rope(q, torch.arange(M - N, M)), rope(k, torch.arange(M))
    s = q @ k.transpose(-1, -2) / math.sqrt(d)
    allowed = torch.tensor([[j <= M - N + a for j in range(M)] for a in range(N)])
    y = F.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1) @ v
    z = z0 + c.out(y.transpose(1, 2).reshape(B, N, D))
    return z + c.mlp(c.norm2(z))


@pytest.mark.parametrize(("N", "M"), [(4, 11), (7, 7), (1, 6)])
def test_cross_layer_matches_dense_reference(N, M):
    m = _model(_cfg(n_latents=N, rope_fraction=0.5))
    assert m.cross.rot == 4  # half of the 8 channels of a head
    x = torch.randn(2, M, 16, dtype=torch.float64)
    torch.testing.assert_close(m.cross(x, N), _dense_cross_reference(m, x, N))


def _decoder_twin(cfg: ModelConfig, pa):
    """A plain pre-LN decoder with Λ+1 softmax layers carrying PerceiverAR ``pa``'s weights."""
    block = BlockConfig(
        mixer=mixer_config("softmax", n_heads=2, bias=cfg.family.cross_bias),
        mlp_ratio=cfg.family.cross_mlp_ratio,
    )
    dec = build_model(cfg.replace(family="decoder", layers=(block, *cfg.layers)))
    dec = dec.double().eval()
    sd = {}
    for name, t in pa.state_dict().items():
        if name.startswith("blocks."):
            i, rest = name.split(".", 2)[1:]
            sd[f"blocks.{int(i) + 1}.{rest}"] = t
        elif name.startswith("cross."):
            rest = name[len("cross.") :]
            if rest.startswith(("q.", "kv.")):
                continue
            rest = rest.replace("norm_q.", "norm1.").replace("out.", "mixer.out.")
            sd[f"blocks.0.{rest}"] = t
        else:
            sd[name] = t
    for suffix in ("weight", "bias") if cfg.family.cross_bias else ("weight",):
        q, kv = pa.state_dict()[f"cross.q.{suffix}"], pa.state_dict()[f"cross.kv.{suffix}"]
        sd[f"blocks.0.mixer.qkv.{suffix}"] = torch.cat([q, kv])
    dec.load_state_dict(sd, strict=True)
    return dec


@pytest.mark.parametrize("pos", ["rope", "learned", "none"])
@pytest.mark.parametrize("cross_bias", [False, True])
def test_n_equals_m_with_embedding_latents_is_a_plain_decoder(pos, cross_bias):
    """§1(e) 2, MetaMain form: z0 = E and one LayerNorm; with N = M every position is a latent
    and the model is a pre-LN decoder of depth Λ+1 (shared weights, identical logits)."""
    M = 12
    cfg = _cfg(
        n_latents=M,
        pos=pos,
        latent_init="embedding",
        rope_fraction=1.0,
        cross_mlp_ratio=4.0,
        cross_bias=cross_bias,
    )
    pa = _model(cfg)
    dec = _decoder_twin(cfg, pa)
    idx = torch.randint(0, 50, (2, M))
    torch.testing.assert_close(pa(idx), dec(idx), rtol=1e-12, atol=1e-12)
    # with N < M it is not: the context is read once, by the cross layer only
    short = cfg.replace(family=cfg.family.replace(n_latents=M - 3))
    pa2 = _model(short)
    pa2.load_state_dict(pa.state_dict())
    assert not torch.allclose(pa2(idx), dec(idx)[:, 3:])


def test_n_equals_m_with_linear_latents_matches_the_reference_decoder():
    """§1(e) 2, official form: queries and residual from Linear_z(E), keys/values from a
    separate LN(E); then ordinary decoder blocks. Written out by hand with the same weights."""
    M = 10
    cfg = _cfg(n_latents=M, rope_fraction=1.0)
    pa = _model(cfg)
    idx = torch.randint(0, 50, (2, M))
    x = pa.embed(idx)
    z = _dense_cross_reference(pa, x, M)  # N = M: the mask is the ordinary causal one
    for block in pa.blocks:  # plain pre-LN decoder blocks (softmax over all M positions)
        z = block(z)
    torch.testing.assert_close(pa(idx), pa.head(pa.norm_f(z)), rtol=1e-12, atol=1e-12)


def test_cross_dropout_is_training_only_causal_and_keeps_own_position():
    cfg = _cfg(n_latents=5, cross_dropout=0.9)
    m = _model(cfg)
    idx = torch.randint(0, 50, (3, 14))
    eval_out = m(idx)
    m.train()
    torch.manual_seed(1)
    a = m(idx)
    torch.manual_seed(2)
    b = m(idx)
    assert not torch.equal(a, b), "the keep-mask must be random in training"
    assert torch.isfinite(a).all() and torch.isfinite(b).all(), "no latent may lose every input"
    m.eval()
    assert torch.equal(m(idx), eval_out), "no dropout in eval mode"
    # a drawn mask: shared across latents and heads, never the own position, never the future
    m.train()
    x = m.embed(idx)
    keep = torch.zeros(3, 14, dtype=torch.bool)  # drop everything: only the own position stays
    z = m.cross(x, 5, keep)
    c = m.cross
    z0 = c.z_proj(x[:, 9:])
    own_only = c.kv(c.norm_kv(x[:, 9:])).view(3, 5, 2, 2, 8)[:, :, 1].reshape(3, 5, 16)
    want = z0 + c.out(own_only)
    torch.testing.assert_close(z, want + c.mlp(c.norm2(want)))


def test_cached_decoding_stops_at_n_latents_and_matches_each_prefix():
    """§1(e) 4: with R = N and a prompt of at most N tokens, step t equals the full forward of
    the first t+1 tokens (where every position is a latent)."""
    N = 6
    m = _model(_cfg(n_latents=N, pos="learned"))
    assert m.can_decode() and m.decode_limit() == N
    idx = torch.randint(0, 50, (2, N))
    state = m.init_state(2, torch.float64, "cpu")
    for t in range(N):
        y, state = m.step(idx[:, t : t + 1], state)
        torch.testing.assert_close(y[:, 0], m(idx[:, : t + 1])[:, -1], rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="latent reset"):
        m.step(idx[:, :1], state)
    # sliding-window latents have no step: the model says so instead of failing later
    sw = _cfg(n_latents=N).replace(
        layers=(BlockConfig(mixer=mixer_config("sliding_window", n_heads=2, window=4)),)
    )
    assert not _model(sw).can_decode()


def test_short_window_makes_every_position_a_latent():
    m = _model(_cfg(n_latents=8))
    assert m.n_scored(5) == 5 and m.n_scored(20) == 8
    assert m(torch.randint(0, 50, (1, 5))).shape == (1, 5, 50)


def test_costs_follow_the_formula_and_the_worked_example():
    """§1(d) term by term for a softmax latent stack, and §6.1's worked example."""
    D, V, N, M, L = 768, 1000, 1024, 2048, 3
    cfg = ModelConfig(
        d_model=D,
        vocab_size=V,
        max_seq_len=M,
        family=PerceiverARConfig(n_latents=N),
        layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=12)),) * L,
    )
    cost = model_cost(cfg, M)
    cross, latent = cost.layers[0], cost.layers[1]
    # §6.1: cross layer 6.44 / 4.83 GFLOP core (dense / exact), latent layer 3.22 / 1.61
    assert round(cross.mixer.core_dense / 1e9, 2) == 6.44
    assert round(cross.mixer.core_exact / 1e9, 2) == 4.83
    assert round(latent.mixer.core_dense / 1e9, 2) == 3.22
    assert round(latent.mixer.core_exact / 1e9, 2) == 1.61
    P_x, P_s = N * (M - N) + N * (N + 1) // 2, N * (N + 1) // 2
    want = (
        4 * M * D * D  # K, V of all inputs
        + 4 * N * D * D  # Q, O of the latents
        + 2 * N * D * D  # Linear_z (latent_init=linear)
        + 4 * D * P_x
        + 4 * 4 * N * D * D  # cross MLP, f_x = 4
        + L * (8 * N * D * D + 4 * D * P_s + 4 * 4 * N * D * D)
        + 2 * N * D * V
    )
    assert cost.forward_exact == want
    assert [lc.seq_len for lc in cost.layers] == [N] * (L + 1)
    # decode state 2D·(M + Λ·N) (§1(d))
    assert cost.decode_state == 2 * D * (M + L * N)


def test_flops_at_fixed_n_grow_linearly_in_m():
    """Issue 4 acceptance: at fixed N the forward FLOPs are affine in M (a constant cost per
    extra input token) with log-log slope 1.00 ± 0.05, analytic and counted on meta; a dense
    decoder over the same M has slope ~2."""
    text = (
        "d_model: 64\nvocab_size: 256\nmax_seq_len: 262144\n"
        "family: {kind: perceiver_ar, n_latents: 64}\n"
        "layers:\n  - {repeat: 2, mixer: {kind: softmax, n_heads: 4}}\n"
    )
    cfg = parse_model_config(text)
    lengths = [16384, 32768, 65536, 131072, 262144]
    analytic = [model_cost(cfg, M).forward_dense for M in lengths]
    model = build_model(cfg, device="meta")
    counted = []
    for M in lengths:
        with torch.device("meta"):
            idx = torch.zeros(1, M, dtype=torch.long)
        counted.append(count_flops(lambda idx=idx: model(idx)).total)
    assert counted == [model_cost(cfg, M).counter_visible for M in lengths]
    for ys in (analytic, counted):
        assert abs(loglog_slope(lengths, ys) - 1.0) < 0.05, loglog_slope(lengths, ys)
    # affine: every extra input token costs the same (second differences vanish)
    pairs = list(zip(lengths, analytic, strict=True))
    steps = {(f2 - f1) / (m2 - m1) for (m1, f1), (m2, f2) in zip(pairs, pairs[1:], strict=False)}
    assert len(steps) == 1
    dec = cfg.replace(family="decoder")
    dense = [model_cost(dec, M).forward_dense for M in lengths]
    assert loglog_slope(lengths, dense) > 1.8
