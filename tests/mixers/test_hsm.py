"""HSM (reconstructed, docs/architectures.md, "HSM"): schedule, receptive field, closed form, no
wrap-around, streaming decode, FLOPs. The conformance suite runs every example config as well."""

import dataclasses

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.mixers import MixerContext, build_mixer, get_mixer, mixer_config
from archsearch.mixers.hsm import (
    MIXINGS,
    HierarchicalShiftMixing,
    layer_shifts,
    num_levels,
    shift_tokens,
)
from archsearch.model.config import BlockConfig, ModelConfig, parse_model_config
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model
from archsearch.profiling.counter import count_flops
from archsearch.profiling.scaling import loglog_slope
from archsearch.testing.mixers import Case, MixerConformance, tensor_numel

D = 16


def _stack(K: int, base: int = 2, d_model: int = D, **params) -> list[HierarchicalShiftMixing]:
    """K HSM layers as the builder makes them (layer ℓ of K), float64, seeded."""
    torch.manual_seed(0)
    cfg = mixer_config("hsm", coverage="cycle", base=base, **params)
    mixers = []
    for layer in range(K):
        ctx = MixerContext(d_model=d_model, layer_idx=layer, n_layers=K, max_seq_len=base**K)
        mixers.append(build_mixer(cfg, ctx).double())
    return mixers


def _run(mixers, x):
    for m in mixers:  # no residual, no norm, no MLP
        x = m(x)
    return x


def _x(B: int, T: int, d_model: int = D, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, d_model, generator=g, dtype=torch.float64)


# ---- shifting and the schedule ----


def test_shift_tokens_zero_pads_and_never_wraps():
    x = torch.arange(1, 6, dtype=torch.float64).view(1, 5, 1)
    assert shift_tokens(x, 0).flatten().tolist() == [1, 2, 3, 4, 5]
    assert shift_tokens(x, 2).flatten().tolist() == [0, 0, 1, 2, 3]
    assert shift_tokens(x, 7).flatten().tolist() == [0] * 5
    fill = torch.tensor([9.0], dtype=torch.float64)
    assert shift_tokens(x, 3, fill).flatten().tolist() == [9, 9, 9, 1, 2]


@pytest.mark.parametrize(
    ("params", "max_seq_len", "K", "shifts"),
    [
        ({}, 16, 4, [1, 2, 4, 8, 1, 2]),  # ascending, cycles over K = log2 16
        ({}, 1000, 10, [1, 2, 4, 8, 16, 32]),  # K = ⌈log2 1000⌉
        ({"schedule": "descending"}, 16, 4, [8, 4, 2, 1, 8, 4]),
        ({"base": 4}, 1024, 5, [1, 4, 16, 64, 256, 1]),
        ({"base": 3, "levels": 2}, 1024, 2, [1, 3, 1, 3, 1, 3]),
        ({"levels": 20}, 16, 20, [1, 2, 4, 8, 16, 32]),  # K >= layers: never repeats
    ],
)
def test_schedule(params, max_seq_len, K, shifts):
    cfg = mixer_config("hsm", coverage="cycle", **params)
    ctxs = [
        MixerContext(d_model=D, layer_idx=i, n_layers=6, max_seq_len=max_seq_len) for i in range(6)
    ]
    assert num_levels(cfg, ctxs[0]) == K
    assert [layer_shifts(cfg, c) for c in ctxs] == [(s,) for s in shifts]


def test_shift_groups_deal_out_the_levels():
    cfg = mixer_config("hsm", coverage="cycle", shift_groups=2)
    ctx = [MixerContext(d_model=D, layer_idx=i, max_seq_len=64) for i in range(4)]
    assert [layer_shifts(cfg, c) for c in ctx] == [(1, 2), (4, 8), (16, 32), (1, 2)]


def test_model_builder_gives_each_layer_its_shift():
    text = (
        "d_model: 16\nmax_seq_len: 64\nlayers:\n"
        "  - {repeat: 2, mixer: {kind: hsm, coverage: cycle, SCHED}}\n"
        "  - {mixer: {kind: softmax, n_heads: 2}}\n"
        "  - {repeat: 3, mixer: {kind: hsm, coverage: cycle, SCHED}}\n"
    )
    by_hsm = build_model(parse_model_config(text.replace("SCHED", "schedule_by: hsm_layers")))
    by_all = build_model(parse_model_config(text.replace("SCHED", "schedule_by: all_layers")))
    shifts = [getattr(b.mixer, "shifts", None) for b in by_hsm.blocks]
    assert shifts == [(1,), (2,), None, (4,), (8,), (16,)]
    shifts = [getattr(b.mixer, "shifts", None) for b in by_all.blocks]
    assert shifts == [(1,), (2,), None, (8,), (16,), (32,)]


def test_context_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"layers\[0\]\.mixer\.shift_groups: got 3; .*d_model=16"):
        parse_model_config("d_model: 16\nlayers:\n  - {mixer: {kind: hsm, shift_groups: 3}}\n")
    with pytest.raises(ConfigError, match=r"shift_groups: got 4; allowed: a divisor of n_heads=2"):
        parse_model_config(
            "d_model: 16\nlayers:\n  - {mixer: {kind: hsm, mixing: pair_softmax, n_heads: 2,"
            " shift_groups: 4}}\n"
        )
    with pytest.raises(ConfigError, match=r"n_heads: got 3; allowed: a divisor of d_model=16"):
        parse_model_config(
            "d_model: 16\nlayers:\n  - {mixer: {kind: hsm, ab_weights: head, n_heads: 3}}\n"
        )
    # heads do not matter to a per-channel ab mixer
    parse_model_config("d_model: 16\nlayers:\n  - {mixer: {kind: hsm, n_heads: 3}}\n")


# ---- receptive field, closed form, no wrap-around ----


def _support(mixers, T: int) -> torch.Tensor:
    """(T, T) boolean: y_t depends on x_j, from float64 gradients (one backward per t, batched)."""
    x = _x(1, T).requires_grad_(True)
    y = _run(mixers, x)
    one_hot = torch.eye(T, dtype=torch.float64)[:, None, :, None].expand(T, *y.shape)
    (g,) = torch.autograd.grad(y, x, grad_outputs=one_hot, is_grads_batched=True)
    return g[:, 0].abs().sum(-1) > 0


@pytest.mark.parametrize("mixing", MIXINGS)
@pytest.mark.parametrize(("base", "K"), [(2, 4), (3, 3)])
def test_receptive_field_is_exactly_the_last_base_to_the_K_tokens(mixing, base, K):
    # docs/architectures.md, "HSM": K pure HSM layers, shifts base^0 … base^(K-1), no residual:
    # y_t depends on x_j exactly for t - base^K < j <= t
    T = base**K + 9
    got = _support(_stack(K, base, mixing=mixing, n_heads=2), T)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    want = (j <= i) & (j > i - base**K)
    assert torch.equal(got, want)


def _product_kernel(a, b, levels, base, n_taps):
    """w[δ] = ∏_ℓ (a_ℓ if digit_{level_ℓ}(δ) = 0 else b_ℓ[digit − 1]), δ < n_taps: (n_taps, D)."""
    w = torch.ones(n_taps, a[0].shape[-1], dtype=torch.float64)
    for delta in range(n_taps):
        for al, bl, level in zip(a, b, levels, strict=True):
            digit = delta // base**level % base
            w[delta] = w[delta] * (al if digit == 0 else bl[digit - 1])
    return w


@pytest.mark.parametrize(
    ("base", "K", "schedule", "ab_weights"),
    [(2, 4, "ascending", "channel"), (3, 3, "descending", "channel"), (2, 3, "ascending", "head")],
)
def test_linear_ab_stack_is_the_product_kernel_convolution(base, K, schedule, ab_weights):
    # docs/architectures.md, "HSM": stacked linear (a,b) mixers = a causal depthwise convolution
    # whose kernel at δ is the product over layers of a or b, chosen by δ's digits
    mixers = _stack(K, base, schedule=schedule, ab_weights=ab_weights, n_heads=4)
    levels = list(range(K)) if schedule == "ascending" else list(range(K - 1, -1, -1))
    assert [m.shifts for m in mixers] == [(base**lv,) for lv in levels]
    with torch.no_grad():
        a = [m._weight(m.a).expand(D) for m in mixers]
        b = [m._weight(m.b).expand(base - 1, D) for m in mixers]
        w = _product_kernel(a, b, levels, base, base**K)
        T = 40
        x = _x(2, T)
        want = torch.stack(
            [sum(w[d] * x[:, t - d] for d in range(min(t + 1, base**K))) for t in range(T)], dim=1
        )
        torch.testing.assert_close(_run(mixers, x), want, rtol=1e-12, atol=1e-12)


def _early_outputs_change(mixers, T: int, t0: int) -> bool:
    x = _x(2, T)
    x2 = x.clone()
    x2[:, t0 + 1 :] = 1e3 * torch.randn(2, T - t0 - 1, D, dtype=torch.float64)
    with torch.no_grad():
        return not torch.equal(_run(mixers, x)[:, : t0 + 1], _run(mixers, x2)[:, : t0 + 1])


@pytest.mark.parametrize("mixing", MIXINGS)
def test_junk_at_the_end_leaves_earlier_outputs_unchanged(mixing):
    # shifts up to 32 on 48 tokens: a wrap-around would carry the junk to the start
    mixers = _stack(6, mixing=mixing, n_heads=2)
    for t0 in (0, 15, 31, 40):
        assert not _early_outputs_change(mixers, 48, t0)


class _RolledHSM(HierarchicalShiftMixing):
    """A shift by torch.roll: wraps the last tokens around to the start."""

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Config(HierarchicalShiftMixing.Config):
        pass

    def _shift(self, x, s, fill):
        return x.roll(s, dims=1)


def test_the_junk_test_and_the_suite_catch_a_rolled_shift():
    from archsearch.mixers import register_mixer, unregister_mixer

    register_mixer("rolled_hsm")(_RolledHSM)
    try:
        rolled = _stack(6)
        for layer, m in enumerate(rolled):
            ctx = MixerContext(d_model=D, layer_idx=layer, n_layers=6, max_seq_len=64)
            rolled[layer] = _RolledHSM(_RolledHSM.Config(), ctx).double()
            rolled[layer].load_state_dict(m.state_dict())
        assert _early_outputs_change(rolled, 48, 15)
        case = Case("rolled_hsm", _RolledHSM.Config(), rope=False)
        with pytest.raises(AssertionError, match="depends on future inputs"):
            MixerConformance().test_causal_by_gradient(case, 37)
        with pytest.raises(AssertionError, match="leak"):
            MixerConformance().test_future_junk_does_not_leak(case)
    finally:
        unregister_mixer("rolled_hsm")


def test_pair_softmax_masks_pad_keys():
    # with zero padding, positions t < d attend only to themselves: outputs equal W_o v_t there
    (m,) = _stack(1, mixing="pair_softmax", n_heads=2, levels=3, schedule="descending")
    assert m.shifts == (4,)
    x = _x(1, 10)
    with torch.no_grad():
        v = m.qkv(x)[..., 2 * D :]
        torch.testing.assert_close(m(x)[:, :4], m.out(v)[:, :4])
        assert not torch.allclose(m(x)[:, 4:], m.out(v)[:, 4:])


# ---- streaming decode ----


def _stream(m, x, max_len=None):
    with torch.no_grad():
        state = m.init_state(x.shape[0], dtype=x.dtype, max_len=max_len)
        ys = []
        for t in range(x.shape[1]):
            y, state = m.step(x[:, t : t + 1], state)
            ys.append(y)
    return torch.cat(ys, dim=1), state


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"base": 3, "shift_groups": 2, "ab_weights": "head"},
        {"pad": "learned", "schedule": "descending", "shift_groups": 2},
    ],
)
def test_ab_streaming_is_bit_identical_to_forward(params):
    # unbounded rings (max_len=None), sequences longer than every ring: slots are reused
    for m in _stack(5, **params):
        x = _x(2, 3 * 16 + 5)
        y, state = _stream(m, x)
        with torch.no_grad():
            assert torch.equal(y, m(x))
        ring = (m.cfg.base - 1) * max(m.shifts)
        assert max(r.shape[1] for r in state.rings[0]) == ring


def test_decoding_past_max_len_is_an_error():
    (m,) = _stack(1)
    with pytest.raises(ValueError, match="max_len=3"):
        _stream(m, _x(1, 4), max_len=3)


def test_model_streaming_equals_forward_and_holds_the_reported_state():
    mixers = [
        {"kind": "hsm"},
        {"kind": "hsm", "mixing": "gated", "shift_groups": 2},
        {"kind": "hsm", "mixing": "pair_softmax", "n_heads": 2, "pad": "learned"},
        {"kind": "hsm", "mixing": "pair_softmax", "shift_groups": 2, "pad": "learned"},
        {"kind": "hsm", "mixing": "gated", "base": 3, "shift_groups": 4, "pad": "learned"},
        {"kind": "hsm", "mixing": "pair_mlp", "base": 3},
        {"kind": "hsm", "ab_weights": "scalar", "schedule": "descending"},
    ]
    cfg = ModelConfig(
        d_model=D,
        max_seq_len=32,
        pos_encoding="learned",
        layers=tuple(
            BlockConfig(mixer=mixer_config(m.pop("kind"), **m), mlp_ratio=2.0) for m in mixers
        ),
    )
    torch.manual_seed(0)
    model = build_model(cfg).double().eval()
    idx = torch.randint(0, 256, (2, 32))
    with torch.no_grad():
        want = model(idx)
        state = model.init_decode_state(2, max_len=32)
        got = []
        for t in range(32):
            logits, state = model.step(idx[:, t : t + 1], state)
            got.append(logits)
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=1e-12, atol=1e-12)
    assert tensor_numel(state) == 2 * model_cost(cfg, 32).decode_state


def test_model_decoding_needs_every_mixer_to_decode():
    cfg = parse_model_config(
        "d_model: 16\nlayers:\n  - {mixer: {kind: hsm, coverage: cycle}}\n"
        "  - {mixer: {kind: sliding_window, n_heads: 2}}\n"
    )
    with pytest.raises(NotImplementedError, match=r"layers\[1\] \(sliding_window\)"):
        build_model(cfg).init_decode_state(1)


def test_decode_state_is_the_rings():
    # §4.6: d·D per layer; summed over shifts 1 … 2^(K-1), (2^K − 1)·D for the stack
    K, T = 10, 1024
    cls = get_mixer("hsm")
    cfg = mixer_config("hsm", coverage="cycle")
    ctxs = [MixerContext(d_model=64, layer_idx=i, n_layers=K, max_seq_len=T) for i in range(K)]
    assert sum(cls.decode_state(cfg, c, T) for c in ctxs) == (2**K - 1) * 64
    soft = mixer_config("hsm", coverage="cycle", mixing="pair_softmax", base=4, shift_groups=2)
    assert cls.decode_state(soft, ctxs[1], T) == 3 * (16 + 64) * 64  # keys and values, 2 groups
    assert cls.decode_state(soft, ctxs[1], 20) == (20 + 20) * 64  # a short sequence


# ---- FLOPs ----


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"base": 4, "ab_weights": "head"},
        {"mixing": "gated", "shift_groups": 2},
        {"mixing": "gated", "base": 3, "bias": True},
        {"mixing": "pair_mlp", "base": 3},
    ],
)
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_elementwise_flops_match_the_counter(params, device):
    cfg = mixer_config("hsm", coverage="cycle", **params)
    ctx = MixerContext(d_model=32, max_seq_len=64)
    with torch.device(device):
        m = build_mixer(cfg, ctx)
        x = torch.randn(2, 45, 32)
    counted = count_flops(lambda: m(x), elementwise=True).total
    assert counted == 2 * get_mixer("hsm").flops(cfg, ctx, 45).dense


def test_ab_is_three_flops_per_channel_and_token():
    f = get_mixer("hsm").flops(
        mixer_config("hsm", coverage="cycle"), MixerContext(d_model=768), 2048
    )
    assert (f.projections, f.core_dense, f.elementwise) == (0, 0, 3 * 2048 * 768)
    # worked example: ≈ 0.005 GFLOP per layer at L = 2048, D = 768
    assert round(f.exact / 1e9, 3) == 0.005


def test_pair_softmax_exact_pairs_are_the_unmasked_ones():
    cfg = mixer_config(
        "hsm", coverage="cycle", mixing="pair_softmax", base=3, shift_groups=2, n_heads=4
    )
    ctx = MixerContext(d_model=32, layer_idx=1, max_seq_len=64)
    m = build_mixer(cfg, ctx)
    T = 37
    valid = torch.arange(T)[:, None, None] >= m._tap_offsets(torch.device("cpu"))
    f = get_mixer("hsm").flops(cfg, ctx, T)
    assert f.core_exact == 4 * (32 // 4) * int(valid.sum())  # 4·d per scored pair per head
    assert f.core_dense == 4 * 32 * 3 * T


LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]


@pytest.mark.parametrize("mixing", MIXINGS)
def test_pure_hsm_mixing_flops_grow_linearly(mixing):
    cfg = ModelConfig(
        d_model=64,
        max_seq_len=65536,
        layers=(BlockConfig(mixer=mixer_config("hsm", coverage="cycle", mixing=mixing)),) * 12,
    )
    analytic = [sum(lc.mixer.exact for lc in model_cost(cfg, T).layers) for T in LENGTHS]
    assert abs(loglog_slope(LENGTHS, analytic) - 1.0) < 0.05
    # the counter, on the real modules (meta device): the elementwise ops too, except for
    # pair_softmax, whose score scaling and masking are softmax work, not counted by convention
    model = build_model(cfg, device="meta")
    counted = []
    for T in LENGTHS:
        with torch.device("meta"):
            x = torch.empty(1, T, 64)
        total = 0
        for i, block in enumerate(model.blocks):
            f = get_mixer("hsm").flops(cfg.layers[i].mixer, cfg.mixer_context(i), T)
            run = lambda b=block, x=x: b.mixer(x)  # noqa: E731
            if mixing == "pair_softmax":
                n, want = count_flops(run).total, f.matmul_dense
            else:
                n, want = count_flops(run, elementwise=True).total, f.dense
            assert n == want, (T, i)
            total += n
        counted.append(total)
    assert abs(loglog_slope(LENGTHS, counted) - 1.0) < 0.05
