"""ECP pairwise segment attention: dense reference, limits, receptive field, decode, cost."""

import math

import pytest
import torch
import torch.nn.functional as F

from archsearch.mixers import MixerContext, build_mixer, get_mixer, mixer_config
from archsearch.profiling.scaling import loglog_slope


def allowed_ecp(T: int, m: int, offset: int = 0) -> torch.Tensor:
    """docs/architectures.md, "LLP and ECP": j <= i and j >= m·(⌊i/m⌋ − 1), boundaries
    shifted by ``offset``."""
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    seg = (i + offset) // m
    lo = ((seg - 1) * m - offset).clamp(min=0)
    return (j <= i) & (j >= lo)


def reference(q, k, v, allowed_HTT):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return F.softmax(s.masked_fill(~allowed_HTT, float("-inf")), dim=-1) @ v


@pytest.mark.parametrize("T", [1, 7, 16, 37, 64])
@pytest.mark.parametrize(
    ("m", "head_split"), [(1, False), (4, False), (5, False), (8, True), (64, False), (6, True)]
)
def test_blocked_kernel_matches_dense_reference(T, m, head_split):
    H = 4
    cfg = mixer_config("ecp", n_heads=H, segment_len=m, head_split=head_split)
    mixer = build_mixer(cfg, MixerContext(d_model=8 * H)).double()
    x = torch.randn(2, T, 8 * H, dtype=torch.float64)
    q = mixer.q(x).view(2, T, H, 8).transpose(1, 2)
    kv = mixer.kv(x).view(2, T, H, 8).transpose(1, 2)
    masks = [allowed_ecp(T, m)] * H
    if head_split:
        masks = [allowed_ecp(T, m)] * (H // 2) + [allowed_ecp(T, m, m // 2)] * (H // 2)
    y = reference(q, kv, kv, torch.stack(masks)).transpose(1, 2).reshape(2, T, 8 * H)
    want = torch.cat([mixer.out0(y[:, :m]), mixer.out(y[:, m:])], dim=1)
    torch.testing.assert_close(mixer(x), want)


@pytest.mark.parametrize("T", [16, 17])
def test_two_segments_one_layer_equal_full_causal_attention_with_shared_kv(T):
    """§3.10: S = 2, one layer, K = V: full causal attention (through the code's layout)."""
    m = (T + 1) // 2
    cfg = mixer_config("ecp", n_heads=2, segment_len=m, separate_out0=False)
    mixer = build_mixer(cfg, MixerContext(d_model=16)).double()
    x = torch.randn(1, T, 16, dtype=torch.float64)
    q = mixer.q(x).view(1, T, 2, 8).transpose(1, 2)
    kv = mixer.kv(x).view(1, T, 2, 8).transpose(1, 2)
    full = F.scaled_dot_product_attention(q, kv, kv, is_causal=True)
    torch.testing.assert_close(mixer(x), mixer.out(full.transpose(1, 2).reshape(1, T, 16)))


def _support(cfg, T):
    torch.manual_seed(0)
    mixer = build_mixer(cfg, MixerContext(d_model=16)).double()
    x = torch.randn(1, T, 16, dtype=torch.float64, requires_grad=True)
    y = mixer(x)
    rows = []
    for t in range(T):
        (g,) = torch.autograd.grad(y[0, t].sum(), x, retain_graph=True)
        rows.append(g[0].abs().sum(-1) > 0)
    return torch.stack(rows)


@pytest.mark.parametrize("m", [4, 5])
def test_receptive_field_after_k_layers(m):
    """After k layers position i reaches back exactly to m·(⌊i/m⌋ − k) (§3.6, §3.10)."""
    T = 40
    one = _support(mixer_config("ecp", n_heads=2, segment_len=m), T)
    assert torch.equal(one, allowed_ecp(T, m))
    reach = one.clone()
    for k in range(1, 6):
        i = torch.arange(T)
        earliest = (m * (i // m - k)).clamp(min=0)
        first_true = reach.int().argmax(dim=1)
        assert torch.equal(first_true, earliest), f"k={k}"
        reach = (reach.double() @ one.double()) > 0


@pytest.mark.parametrize(
    "params",
    [
        {"segment_len": 4},
        {"segment_len": 5, "kv_shared": False, "separate_out0": False},
        {"segment_len": 6, "head_split": True, "n_heads": 4},
        {"segment_len": 4, "rope_all_layers": True},
    ],
)
@pytest.mark.parametrize("layer_idx", [0, 2])
def test_streaming_decode_equals_full_forward(params, layer_idx):
    params = {"n_heads": 2, **params}
    cfg = mixer_config("ecp", **params)
    ctx = MixerContext(d_model=16, rope=True, layer_idx=layer_idx, n_layers=3)
    torch.manual_seed(0)
    mixer = build_mixer(cfg, ctx).double()
    T = 29
    x = torch.randn(2, T, 16, dtype=torch.float64)
    full = mixer(x)
    state = mixer.init_state(2, dtype=torch.float64)  # no max_len: a stream of any length
    steps = []
    with torch.no_grad():
        for t in range(T):
            y, state = mixer.step(x[:, t : t + 1], state)
            steps.append(y)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-10, atol=1e-10)
    # the ring buffer holds two segments, whatever the stream length
    assert state["k"].shape[2] == 2 * cfg.segment_len


LENGTHS = [2048, 4096, 8192, 16384, 32768, 65536]


def test_flops_linear_and_match_s2attn_budget():
    """Issue 4 acceptance: m = 256, ECP FLOPs linear in T; core (dense) within 10% of S2-Attn
    with G = 2m for every T >= 2K; both give a query at most 2m keys."""
    ctx = MixerContext(d_model=512)
    ecp = mixer_config("ecp", n_heads=8, segment_len=256)
    s2 = mixer_config("s2attn", n_heads=8, group_size=512)
    E, S = get_mixer("ecp"), get_mixer("s2attn")
    fl = [E.flops(ecp, ctx, T) for T in LENGTHS]
    assert abs(loglog_slope(LENGTHS, [f.dense for f in fl]) - 1.0) < 0.05
    assert abs(loglog_slope(LENGTHS, [f.core_dense for f in fl]) - 1.0) < 0.05
    for T, f in zip(LENGTHS, fl, strict=True):
        g = S.flops(s2, ctx, T)
        assert abs(f.core_dense - g.core_dense) / g.core_dense < 0.10, T
    # keys per query: the widest row of each pattern
    T = 2048
    assert int(allowed_ecp(T, 256).sum(1).max()) == 2 * 256
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    for shift in (0, 256):  # S2-Attn aligned and shifted heads
        s2_rows = (j <= i) & ((i + shift) // 512 == (j + shift) // 512)
        assert int(s2_rows.sum(1).max()) == 512


def test_counted_flops_linear_on_meta():
    from archsearch.profiling.counter import count_flops

    with torch.device("meta"):
        mixer = build_mixer(
            mixer_config("ecp", n_heads=4, segment_len=128), MixerContext(d_model=64)
        )
    counts = []
    lengths = [2048, 8192, 32768, 65536]
    for T in lengths:
        with torch.device("meta"):
            x = torch.empty(1, T, 64)
        counts.append(count_flops(lambda x=x: mixer(x)).total)
    assert abs(loglog_slope(lengths, counts) - 1.0) < 0.05


def test_decode_state_is_constant_in_stream_length():
    E = get_mixer("ecp")
    cfg = mixer_config("ecp", n_heads=4, segment_len=64)
    ctx = MixerContext(d_model=64)
    assert E.decode_state(cfg, ctx, 4096) == E.decode_state(cfg, ctx, 1 << 20) == 2 * 64 * 64
