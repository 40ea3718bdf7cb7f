"""Combiner (docs/architectures.md, "Combiner"): blocked kernels vs a per-query reference
written from the definition, the effective attention distribution, spans, limits, decoding,
costs and scaling."""

import math

import pytest
import torch

from archsearch.mixers import MixerContext, build_mixer, get_mixer, mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.transformer import build_model
from archsearch.ops.combiner import (
    axial_attention,
    fixed_attention,
    logsparse_attention,
    logsparse_levels,
    logsparse_spans,
    mixture_attention,
)
from archsearch.profiling.scaling import loglog_slope

# ---------------------------------------------------------------------------------------------
# a slow, obvious reference: for each query, list its direct keys and its spans, then one softmax


def _pool(x, pool):
    return x.amax(0) if pool == "max" else x.mean(0)


def _span_term(q, k, v, idx, pool, scale):
    """(k_Ω, v̄_Ω) of span ``idx`` for one head: pooled key, local expectation."""
    q_om, k_om = _pool(q[idx], pool), _pool(k[idx], pool)
    p = torch.softmax(k[idx] @ q_om * scale, dim=0)
    return k_om, p @ v[idx]


def _mix(qi, terms, scale):
    keys = torch.stack([t[0] for t in terms])
    vals = torch.stack([t[1] for t in terms])
    return torch.softmax(keys @ qi * scale, dim=0) @ vals


def structure(variant, T, block, i):
    """(direct, spans) of query i: index lists, spans tagged with the plan they belong to."""
    if variant == "fixed":
        s = min(block, T)
        b = i // s
        spans = [("blk", list(range(r * s, (r + 1) * s))) for r in range(b)]
        return list(range(b * s, i + 1)), spans
    if variant == "logsparse":
        # the level-0 span {i-1} (odd i) is one token: pooling it changes nothing
        return [i], [("lvl", list(range(a, e))) for a, e in logsparse_spans(i)]
    m = min(block, T)
    r, c = divmod(i, m)
    if variant == "axial":
        return [r * m + cc for cc in range(c + 1)], [("row", [rr]) for rr in range(r)]
    direct = [rr * m + c for rr in range(r)] + [r * m + cc for cc in range(c + 1)]
    spans = []
    if r:
        spans += [("vert", [rr * m + cc for rr in range(r)]) for cc in range(m) if cc != c]
        for rr in range(r):
            if c > 0:
                spans.append(("left", [rr * m + cc for cc in range(c)]))
            if c < m - 1:
                spans.append(("right", [rr * m + cc for cc in range(c + 1, m)]))
    return direct, spans


def naive(q, k, v, variant, block=4, pool="max", average=False, row_key="none", key_fn=None):
    """Combiner on (B, H, T, d) from the definition, one query at a time (float64, tiny T).

    Axial row summaries: key ``k[r', c]`` (none), the weighted key sum (wsum), or
    ``key_fn(b, pos, v̄_Hd, wsum_Hd) -> (H, d)`` for the module's projected keys."""
    B, H, T, d = q.shape
    scale = d**-0.5
    y = torch.zeros(B, H, T, v.shape[-1], dtype=q.dtype)
    m = min(block, T)
    for b in range(B):
        row_sum = {}
        if variant == "axial":
            for pos in range(T - T % m if T % m else T):
                rr, c = divmod(pos, m)
                row = list(range(rr * m, rr * m + m))
                p = torch.softmax(k[b, :, row] @ q[b, :, pos, :, None] * scale, dim=1)
                vbar, wsum = (p.transpose(1, 2) @ v[b, :, row])[:, 0], (p.mT @ k[b, :, row])[:, 0]
                if key_fn is not None:
                    key = key_fn(b, pos, vbar, wsum)
                else:
                    key = wsum if row_key == "wsum" else k[b, :, pos]
                row_sum[pos] = (key, vbar)
        for h in range(H):
            qq, kk, vv = q[b, h], k[b, h], v[b, h]
            for i in range(T):
                direct, spans = structure(variant, T, block, i)
                terms = [(kk[j], vv[j]) for j in direct]
                tagged = []
                for tag, idx in spans:
                    if tag == "row":
                        key, vbar = row_sum[idx[0] * m + i % m]
                        tagged.append((tag, (key[h], vbar[h])))
                    else:
                        tagged.append((tag, _span_term(qq, kk, vv, idx, pool, scale)))
                if not average:
                    y[b, h, i] = _mix(qq[i], terms + [t for _, t in tagged], scale)
                else:
                    plan_v = terms + [t for tag, t in tagged if tag == "vert"]
                    plan_h = terms + [t for tag, t in tagged if tag in ("left", "right")]
                    y[b, h, i] = 0.5 * (_mix(qq[i], plan_v, scale) + _mix(qq[i], plan_h, scale))
    return y


def _qkv(T, H=2, d=4, seed=0, B=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, d, generator=g, dtype=torch.float64) for _ in range(3)]


def kernel(q, k, v, variant, block=4, pool="max", average=False, summary_keys="none"):
    if variant == "fixed":
        return fixed_attention(q, k, v, block, pool)
    if variant == "logsparse":
        return logsparse_attention(q, k, v, pool)
    if variant == "axial":
        return axial_attention(q, k, v, block, summary_keys)
    return mixture_attention(q, k, v, block, pool, average)


# ---------------------------------------------------------------------------------------------
# the blocked kernels compute exactly the definition


KERNEL_CASES = [
    ("fixed", 4, "max", False, "none"),
    ("fixed", 3, "mean", False, "none"),
    ("fixed", 7, "max", False, "none"),
    ("logsparse", 0, "max", False, "none"),
    ("logsparse", 0, "mean", False, "none"),
    ("axial", 4, "max", False, "none"),
    ("axial", 5, "max", False, "wsum"),
    ("mixture", 4, "max", False, "none"),
    ("mixture", 3, "mean", False, "none"),
    ("mixture", 5, "max", True, "none"),
    ("mixture", 2, "mean", True, "none"),
]


@pytest.mark.parametrize(("variant", "block", "pool", "average", "row_key"), KERNEL_CASES)
@pytest.mark.parametrize("T", [1, 7, 16, 23])
def test_kernel_matches_reference(variant, block, pool, average, row_key, T):
    q, k, v = _qkv(T)
    got = kernel(q, k, v, variant, block, pool, average, row_key)
    want = naive(q, k, v, variant, block, pool, average, row_key)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("row_summary", ["proj", "wsum_proj"])
@pytest.mark.parametrize("rope", [False, True])
def test_axial_projected_summary_keys_match_reference(row_summary, rope):
    # docs/architectures.md, "Combiner": k̃[r', c] = W_k2·LN(x[r', c] + W_p·concat_heads(v̄[r', c]))
    T, m, D, H = 19, 4, 16, 2
    torch.manual_seed(0)
    cfg = mixer_config(
        "combiner", n_heads=H, variant="axial", block_size=m, row_summary=row_summary
    )
    mod = build_mixer(cfg, MixerContext(d_model=D, rope=rope)).double()
    x = torch.randn(2, T, D, dtype=torch.float64)
    q, k, v = mod._project(x)

    def key_fn(b, pos, vbar_Hd, wsum_Hd):
        pre = (wsum_Hd if row_summary == "wsum_proj" else vbar_Hd).reshape(1, 1, D)
        h = mod.summary_norm(x[b : b + 1, pos : pos + 1] + mod.summary_proj(pre))
        key = mod.summary_key(h).view(1, 1, H, D // H).transpose(1, 2)  # (1, H, 1, d)
        if rope:
            from archsearch.ops.rope import apply_rope, rope_cos_sin

            cos, sin = rope_cos_sin(torch.tensor([pos]), D // H, 10000.0, key.dtype)
            key = apply_rope(key, cos, sin)
        return key[0, :, 0]

    y = naive(q, k, v, "axial", m, key_fn=key_fn)
    want = mod.out(y.transpose(1, 2).reshape(2, T, D))
    torch.testing.assert_close(mod(x), want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# the effective distribution q(j|i), read off the kernels with v = identity


def distribution(variant, T, block=4, pool="max", average=False, q=None, seed=0):
    """(B, H, T, T) effective attention: the output for one-hot values v_j = e_j."""
    q0, k, _ = _qkv(T, seed=seed)
    q = q0 if q is None else q
    eye = torch.eye(T, dtype=torch.float64).expand(2, 2, T, T)
    keys = "none"
    if variant == "axial":
        m = min(block, T)
        rows = -(-T // m) - 1
        # any keys will do: the projected keys are one fixed (B,H,n-1,m,d) tensor per input
        keys = torch.randn(2, 2, rows, m, 4, dtype=torch.float64) if rows else "none"
    return kernel(q, k, eye, variant, block, pool, average, keys)


DIST_CASES = [
    ("fixed", 4, "max", False),
    ("fixed", 5, "mean", False),
    ("logsparse", 0, "max", False),
    ("logsparse", 0, "mean", False),
    ("axial", 4, "max", False),
    ("axial", 6, "max", False),
    ("mixture", 4, "max", False),
    ("mixture", 5, "mean", False),
    ("mixture", 4, "max", True),
]


@pytest.mark.parametrize(("variant", "block", "pool", "average"), DIST_CASES)
@pytest.mark.parametrize("T", [1, 23, 32])
def test_full_support_and_normalisation(variant, block, pool, average, T):
    Q = distribution(variant, T, block, pool, average)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    torch.testing.assert_close(Q.sum(-1), torch.ones(2, 2, T, dtype=torch.float64))
    assert (Q[..., future] == 0).all(), "weight on the future"
    assert (Q[..., ~future] > 0).all(), "a past position gets no weight (support not full)"


def _rank_ratio(M):
    s = torch.linalg.svdvals(M)
    return (s[1] / s[0]).item()


def test_rank_one_where_queries_share_a_span():
    T, s = 32, 4
    Q = distribution("fixed", T, s)[0, 1]
    for r in range(T // s - 1):  # block r is one span for every later query
        assert _rank_ratio(Q[(r + 1) * s :, r * s : (r + 1) * s]) < 1e-12
    # control: inside a block the direct set is scored pair by pair (full rank)
    assert _rank_ratio(Q[8:12, 8:12]) > 1e-3

    Q = distribution("logsparse", T)[1, 0]
    for l in range(1, logsparse_levels(T)):
        c = 1 << l
        for a in range(T // (2 * c)):  # the odd block after even block 2a shares it
            odd, even = slice((2 * a + 1) * c, (2 * a + 2) * c), slice(2 * a * c, (2 * a + 1) * c)
            assert _rank_ratio(Q[odd, even]) < 1e-12

    m = 4
    Q = distribution("axial", T, m)[1, 1]
    for rr in range(T // m - 1):  # column c of row rr: one summary for every later row
        for c in range(m):
            rows = [r * m + c for r in range(rr + 1, T // m)]
            if len(rows) > 1:
                assert _rank_ratio(Q[rows, rr * m : (rr + 1) * m]) < 1e-12
    assert _rank_ratio(Q[8:12, 8:12]) > 1e-3


# ---------------------------------------------------------------------------------------------
# logsparse spans


@pytest.mark.parametrize("T", [1, 2, 3, 5, 64, 100, 1025])
def test_logsparse_spans_partition_the_prefix(T):
    K = logsparse_levels(T)
    assert math.ceil(math.log2(T)) == K if T > 1 else K == 0
    for i in range(T):
        spans = logsparse_spans(i)
        covered = [j for a, e in spans for j in range(a, e)]
        assert sorted(covered) == list(range(i)), f"spans of {i} do not partition [0, {i})"
        assert len(spans) <= K
        for a, e in spans:  # aligned dyadic blocks
            size = e - a
            assert size & (size - 1) == 0 and a % size == 0


@pytest.mark.parametrize("T", [16, 27])
def test_logsparse_kernel_uses_exactly_those_spans(T):
    # with q = 0 every logit is 0: each of the N = 1 + popcount(i) terms gets 1/N, spread
    # uniformly over its span, so row i of q(j|i) spells out the span partition
    Q = distribution("logsparse", T, q=torch.zeros(2, 2, T, 4, dtype=torch.float64))[0, 0]
    for i in range(T):
        spans = logsparse_spans(i)
        N = 1 + len(spans)
        assert Q[i, i].item() == pytest.approx(1 / N, abs=1e-14)
        for a, e in spans:
            want = torch.full((e - a,), 1 / (N * (e - a)), dtype=torch.float64)
            torch.testing.assert_close(Q[i, a:e], want, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# exact limits (the conformance suite also runs these through `equivalences`)


def _pair(cfg, other, rope=False, D=16, strict=True):
    ctx = MixerContext(d_model=D, rope=rope)
    torch.manual_seed(0)
    a = build_mixer(cfg, ctx).double()
    b = build_mixer(other, ctx).double()
    b.load_state_dict(a.state_dict(), strict=strict)
    return a, b


@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("T", [9, 20])
def test_limits_equal_full_causal_attention(rope, T):
    full = mixer_config("softmax", n_heads=2)
    x = torch.randn(2, T, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    limits = [
        {"variant": "fixed", "block_size": 1},
        {"variant": "fixed", "block_size": T},
        {"variant": "fixed", "block_size": 3 * T},  # clamped to T
        {"variant": "axial", "block_size": T, "row_summary": "wsum"},
        {"variant": "mixture", "block_size": 1, "pool": "mean", "mixture": "average"},
    ]
    for params in limits:
        a, b = _pair(mixer_config("combiner", n_heads=2, **params), full, rope)
        torch.testing.assert_close(a(x), b(x), rtol=1e-10, atol=1e-10, msg=str(params))
    # the projected-key axial has extra parameters; with one row they are unused
    a, b = _pair(
        mixer_config("combiner", n_heads=2, variant="axial", block_size=T), full, rope, strict=False
    )
    torch.testing.assert_close(a(x), b(x), rtol=1e-10, atol=1e-10)
    # and strictly between the limits Combiner is a different distribution
    for params in ({"variant": "fixed", "block_size": 4}, {"variant": "axial", "block_size": 4}):
        a, b = _pair(mixer_config("combiner", n_heads=2, **params), full, rope, strict=False)
        assert not torch.allclose(a(x), b(x)), params


def test_mixture_joint_and_average_differ():
    q, k, v = _qkv(20)
    joint = mixture_attention(q, k, v, 4)
    assert not torch.allclose(joint, mixture_attention(q, k, v, 4, average=True))


# ---------------------------------------------------------------------------------------------
# incremental decoding (fixed)


@pytest.mark.parametrize(("block", "pool", "rope"), [(4, "max", True), (5, "mean", False)])
def test_fixed_decoding_equals_forward(block, pool, rope):
    T, D = 23, 16
    torch.manual_seed(0)
    cfg = mixer_config("combiner", n_heads=2, variant="fixed", block_size=block, pool=pool)
    ctx = MixerContext(d_model=D, rope=rope)
    mod = build_mixer(cfg, ctx).double()
    x = torch.randn(2, T, D, dtype=torch.float64)
    full = mod(x)
    state = mod.init_state(2)
    for t in range(T):
        y, state = mod.step(x[:, t : t + 1], state)
        torch.testing.assert_close(y, full[:, t : t + 1], rtol=1e-12, atol=1e-12)
        # the state holds what decode_state says (per sequence; the batch has 2)
        held = sum(
            z.numel()
            for z in (state.k_blk, state.v_blk, state.q_pool, state.k_sum, state.v_sum)
            if z is not None
        )
        assert held == 2 * get_mixer("combiner").decode_state(cfg, ctx, t + 1)
    assert state.k_sum.shape[2] == T // block  # one summary per finished block
    assert state.k_blk.shape[2] == T % block  # only the open block's keys are kept


def test_decoding_other_variants_is_refused():
    mod = build_mixer(
        mixer_config("combiner", variant="axial", block_size=4), MixerContext(d_model=16)
    )
    with pytest.raises(NotImplementedError, match="fixed"):
        mod.init_state(1)


# ---------------------------------------------------------------------------------------------
# costs: exact counts by enumeration, dense counts by the counter, scaling


def brute_exact_dots(variant, T, block, row_summary="proj"):
    """Dots (2·d FLOPs each) a block-sparse kernel needs, enumerated from ``structure``."""
    dots, summaries, qk = 0, {}, set()
    m = min(block, T)
    for i in range(T):
        direct, spans = structure(variant, T, block, i)
        if variant == "logsparse":  # the kernel attends i-1 directly
            direct += [j for _, idx in spans if len(idx) == 1 for j in idx]
            spans = [(tag, idx) for tag, idx in spans if len(idx) > 1]
        if variant == "axial":
            qk |= {(i, j) for j in direct}
            dots += len(direct) + 2 * len(spans)  # direct PV; global QK + PV
            for _, (rr,) in spans:
                pos = rr * m + i % m
                summaries[pos] = (2 if row_summary.startswith("wsum") else 1) * m  # PV (+wsum)
                qk |= {(pos, rr * m + c) for c in range(m)}
        else:
            dots += 2 * len(direct) + 2 * len(spans)
            for tag, idx in spans:
                summaries[(tag, tuple(idx))] = 2 * len(idx)  # QK + PV over the span
    return dots + sum(summaries.values()) + len(qk)


@pytest.mark.parametrize("variant", ["fixed", "logsparse", "axial", "mixture"])
def test_exact_dots_match_enumeration(variant):
    cls = get_mixer("combiner")
    ctx = MixerContext(d_model=8)
    for T in [1, 2, 3, 5, 8, 11, 16, 23, 30]:
        for block in [1, 2, 3, 4, 7] if variant != "logsparse" else [128]:
            for rs in ["none", "wsum"] if variant == "axial" else ["proj"]:
                cfg = mixer_config("combiner", variant=variant, block_size=block, row_summary=rs)
                exact, dense = cls.core_dots(cfg, T)
                assert exact == brute_exact_dots(variant, T, block, rs), (T, block, rs)
                assert exact <= dense
                assert cls.flops(cfg, ctx, T).core_exact == 2 * 8 * exact


@pytest.mark.parametrize(
    "params",
    [
        {"variant": "fixed"},
        {"variant": "logsparse"},
        {"variant": "axial", "row_summary": "wsum_proj"},
        {"variant": "mixture", "mixture": "average"},
    ],
)
def test_dense_flops_match_counter_on_meta_across_shapes(params):
    from archsearch.profiling.counter import count_flops

    cls = get_mixer("combiner")
    ctx = MixerContext(d_model=16)
    for block in [1, 2, 3, 7] if params["variant"] != "logsparse" else [128]:
        cfg = mixer_config("combiner", n_heads=2, block_size=block, **params)
        with torch.device("meta"):
            mod = build_mixer(cfg, ctx)
        for T in [1, 2, 3, 5, 8, 13, 17, 31]:
            with torch.device("meta"):
                x = torch.empty(1, T, 16)
            counted = count_flops(lambda mod=mod, x=x: mod(x)).total
            assert counted == cls.flops(cfg, ctx, T).matmul_dense, (block, T)


LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]
COUNTED_LENGTHS = [1024, 4096, 16384, 65536]


def _cfg_at(variant, T):
    block = 128 if variant == "logsparse" else "sqrt"  # s = m = ⌊√T⌋
    return mixer_config("combiner", n_heads=4, variant=variant, block_size=block)


def core_slopes(variant):
    """Fitted log-log slopes of attention-core FLOPs vs T (1K-64K, s = m = √T)."""
    from archsearch.profiling.counter import count_flops

    cls = get_mixer("combiner")
    ctx = MixerContext(d_model=64)
    flops = [cls.flops(_cfg_at(variant, T), ctx, T) for T in LENGTHS]
    counted = []
    for T in COUNTED_LENGTHS:
        cfg = _cfg_at(variant, T)
        with torch.device("meta"):
            mod = build_mixer(cfg, ctx)
            x = torch.empty(1, T, 64)
        # the counter sees projections + core; the core is what remains
        core = count_flops(lambda mod=mod, x=x: mod(x)).total - cls.flops(cfg, ctx, T).projections
        assert core == cls.flops(cfg, ctx, T).core_dense  # and it is the analytic count
        counted.append(core)
    return {
        "dense": loglog_slope(LENGTHS, [f.core_dense for f in flops]),
        "exact": loglog_slope(LENGTHS, [f.core_exact for f in flops]),
        "counted": loglog_slope(COUNTED_LENGTHS, counted),
    }


@pytest.mark.parametrize("variant", ["fixed", "axial", "mixture", "logsparse"])
def test_attention_core_flops_scaling(variant):
    slopes = core_slopes(variant)
    for kind, slope in slopes.items():
        if variant == "logsparse":
            assert 1.0 < slope < 1.15, (kind, slope)
        else:
            assert abs(slope - 1.5) < 0.05, (kind, slope)


def test_work_is_blocked_no_txt_tensor():
    # no intermediate comes near the H·T² of a dense score tensor (meta device: shapes only)
    from torch.utils._python_dispatch import TorchDispatchMode

    biggest = [0]

    class Sizes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    biggest[0] = max(biggest[0], t.numel())
            return out

    T, H = 16384, 4
    for variant in ["fixed", "logsparse", "axial", "mixture"]:
        cfg = _cfg_at(variant, T)
        with torch.device("meta"):
            mod = build_mixer(cfg, MixerContext(d_model=64))
            x = torch.empty(1, T, 64)
        biggest[0] = 0
        with Sizes():
            mod(x)
        # scores are H·T·(s + n) ≈ 2·H·T^1.5 (mixture: H·T·(3n + 2m) ≈ 5·H·T^1.5), not H·T²
        assert biggest[0] <= 6 * H * T * math.sqrt(T) < H * T * T / 16, (variant, biggest[0])


# ---------------------------------------------------------------------------------------------
# block_size: sqrt (s = m = max(1, ⌊√T⌋) at every T)

SQRT_PARAMS = [
    {"variant": "fixed"},
    {"variant": "fixed", "pool": "mean"},
    {"variant": "axial"},  # projected summary keys: W_p, LayerNorm, W_k2 on m-wide rows
    {"variant": "axial", "row_summary": "wsum"},
    {"variant": "mixture"},
    {"variant": "mixture", "pool": "mean", "mixture": "average"},
]
SQRT_LENGTHS = [1, 2, 3, 8, 15, 16, 17, 24, 99, 1000, 4097, 65535]  # squares and non-squares


@pytest.mark.parametrize("params", SQRT_PARAMS)
def test_sqrt_block_costs_equal_the_explicit_isqrt_block(params):
    cls = get_mixer("combiner")
    ctx = MixerContext(d_model=16)
    sqrt = mixer_config("combiner", n_heads=2, block_size="sqrt", **params)
    for T in SQRT_LENGTHS:
        explicit = mixer_config("combiner", n_heads=2, block_size=math.isqrt(T), **params)
        assert sqrt.block_len(T) == math.isqrt(T), T
        assert cls.core_dots(sqrt, T) == cls.core_dots(explicit, T), T
        assert cls.flops(sqrt, ctx, T) == cls.flops(explicit, ctx, T), T
        assert cls.decode_state(sqrt, ctx, T) == cls.decode_state(explicit, ctx, T), T
    # and the block really follows T: one int block cannot match at both lengths
    fixed_99 = mixer_config("combiner", n_heads=2, block_size=9, **params)
    assert cls.flops(sqrt, ctx, 99) == cls.flops(fixed_99, ctx, 99)
    assert cls.flops(sqrt, ctx, 4097) != cls.flops(fixed_99, ctx, 4097)


@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("params", SQRT_PARAMS + [{"variant": "axial", "row_summary": "wsum_proj"}])
def test_sqrt_forward_equals_the_explicit_isqrt_block(params, rope):
    x_all = torch.randn(2, 50, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    sqrt = mixer_config("combiner", n_heads=2, block_size="sqrt", **params)
    for T in [1, 3, 7, 16, 23, 50]:
        explicit = mixer_config("combiner", n_heads=2, block_size=math.isqrt(T), **params)
        a, b = _pair(sqrt, explicit, rope)  # same weights
        x = x_all[:, :T]
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0, msg=f"T={T}")


def test_sqrt_fixed_core_flops_grow_as_t_to_the_1_5():
    cls = get_mixer("combiner")
    ctx = MixerContext(d_model=64)
    Ts = [2**p for p in range(10, 21)]  # 1K .. 1M
    sqrt = mixer_config("combiner", variant="fixed", block_size="sqrt")
    flops = [cls.flops(sqrt, ctx, T) for T in Ts]
    for kind in ("core_dense", "core_exact"):
        slope = loglog_slope(Ts, [getattr(f, kind) for f in flops])
        assert abs(slope - 1.5) < 0.05, (kind, slope)
    # a fixed block is quadratic once T/s dominates s: ≈ 2 at large T, far from 1.5 overall
    fixed = mixer_config("combiner", variant="fixed", block_size=32)
    flops = [cls.flops(fixed, ctx, T) for T in Ts]
    for kind in ("core_dense", "core_exact"):
        ys = [getattr(f, kind) for f in flops]
        assert abs(loglog_slope(Ts[4:], ys[4:]) - 2) < 0.05, kind  # T = 16K .. 1M
        assert loglog_slope(Ts, ys) > 1.8, kind


def _held(state):
    parts = (state.k_blk, state.v_blk, state.q_pool, state.k_sum, state.v_sum)
    return sum(z.numel() for z in parts if z is not None)


@pytest.mark.parametrize(("pool", "rope"), [("max", True), ("mean", False)])
@pytest.mark.parametrize("T", [1, 6, 23, 41])
def test_sqrt_fixed_decoding_uses_the_block_of_max_len(pool, rope, T):
    D = 16
    torch.manual_seed(0)
    cfg = mixer_config("combiner", n_heads=2, variant="fixed", block_size="sqrt", pool=pool)
    ctx = MixerContext(d_model=D, rope=rope)
    cls = get_mixer("combiner")
    mod = build_mixer(cfg, ctx).double()
    x = torch.randn(2, T, D, dtype=torch.float64)
    full = mod(x)  # s = ⌊√T⌋
    s = math.isqrt(T)
    state = mod.init_state(2, max_len=T)
    assert state.block == s
    for t in range(T):
        y, state = mod.step(x[:, t : t + 1], state)
        torch.testing.assert_close(y, full[:, t : t + 1], rtol=1e-12, atol=1e-12)
        explicit = cfg.replace(block_size=s)  # the state mid-way is that of the block ⌊√T⌋
        assert _held(state) == 2 * cls.decode_state(explicit, ctx, t + 1)
    assert _held(state) == 2 * cls.decode_state(cfg, ctx, T)  # the conformance contract
    assert state.k_sum.shape[2] == T // s and state.k_blk.shape[2] == T % s


def test_sqrt_fixed_decoding_without_max_len_uses_ctx_max_seq_len():
    D, L, T = 16, 30, 23  # s = ⌊√30⌋ = 5, not ⌊√23⌋ = 4
    torch.manual_seed(0)
    cfg = mixer_config("combiner", n_heads=2, variant="fixed", block_size="sqrt")
    mod = build_mixer(cfg, MixerContext(d_model=D, max_seq_len=L)).double()
    x = torch.randn(2, L, D, dtype=torch.float64)
    want = mod(x)[:, :T]  # the first T outputs of a max_seq_len-long sequence
    state = mod.init_state(2)
    assert state.block == 5
    got = []
    for t in range(T):
        y, state = mod.step(x[:, t : t + 1], state)
        got.append(y)
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=1e-12, atol=1e-12)
    # a length-T forward uses s = 4: a different function of the same prefix
    assert not torch.allclose(mod(x[:, :T]), want)


def test_sqrt_config_errors_are_one_line_and_name_the_field():
    from archsearch.dataconf import from_dict
    from archsearch.errors import ConfigError

    C = get_mixer("combiner").Config
    assert from_dict(C, {"block_size": "sqrt"}).block_size == "sqrt"
    for fields in (
        {"block_size": "cube"},
        {"block_size": 0},
        {"block_size": 2.5},
        {"block_size": True},
        {"variant": "logsparse", "block_size": "sqrt"},
    ):
        with pytest.raises(ConfigError) as info:
            from_dict(C, fields, prefix="mixer")
        msg = str(info.value)
        assert info.value.field == "mixer.block_size" and "\n" not in msg, msg
        assert repr(fields["block_size"]) in msg, msg
        assert "sqrt" in msg or "logsparse" in msg, msg
    for bad in ("cube", 0, 2.5, True):  # built in Python, past the YAML type check
        with pytest.raises(ConfigError, match="an integer >= 1 or 'sqrt'"):
            C(block_size=bad)


# ---------------------------------------------------------------------------------------------
# CLI listing


def test_archsearch_mixers_lists_the_combiner_variants():
    import json

    from typer.testing import CliRunner

    from archsearch.cli import app

    r = CliRunner().invoke(app, ["mixers", "--json"])
    row = {x["name"]: x for x in json.loads(r.stdout)}["combiner"]
    for variant in ("fixed", "logsparse", "axial", "mixture"):
        assert variant in row["summary"]
    assert row["hyperparameters"]["variant"] == "fixed"
    assert {"block_size", "pool", "row_summary", "mixture"} <= set(row["hyperparameters"])


# ---------------------------------------------------------------------------------------------
# decode capability is a function of the config: models of fixed layers decode, others do not


def test_decode_capability_depends_on_the_variant():
    cls = get_mixer("combiner")
    assert not cls.supports_decode  # not every config decodes ...
    assert cls.supports_decode_for(mixer_config("combiner", variant="fixed"))  # ... fixed does
    for variant in ("logsparse", "axial", "mixture"):
        assert not cls.supports_decode_for(mixer_config("combiner", variant=variant))


def test_model_of_fixed_layers_streams_like_forward():
    def model_cfg(*variants):
        layers = tuple(
            BlockConfig(
                mixer=mixer_config(
                    "combiner", n_heads=2, variant=v, block_size=4 if v != "logsparse" else 128
                )
            )
            for v in variants
        )
        return ModelConfig(d_model=16, max_seq_len=16, pos_encoding="rope", layers=layers)

    torch.manual_seed(0)
    model = build_model(model_cfg("fixed", "fixed")).double().eval()
    assert model.can_decode()
    idx = torch.randint(0, 256, (2, 13))
    with torch.no_grad():
        want = model(idx)
        state = model.init_decode_state(2, max_len=13)
        got = []
        for t in range(13):
            logits, state = model.step(idx[:, t : t + 1], state)
            got.append(logits)
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=1e-12, atol=1e-12)
    mixed = build_model(model_cfg("fixed", "axial"))
    assert not mixed.can_decode()
    with pytest.raises(NotImplementedError, match=r"layers\[1\] \(combiner\)"):
        mixed.init_decode_state(1)
