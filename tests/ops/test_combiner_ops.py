"""Combiner kernels (archsearch.ops.combiner) against the dense masked reference, and their exact
dot counts against the reference masks; the fixed variant's decoding step against its kernel."""

import pytest
import torch

from archsearch.ops.combiner import (
    axial_attention,
    axial_dots,
    fixed_attention,
    fixed_decode_init,
    fixed_decode_step,
    fixed_dots,
    logsparse_attention,
    logsparse_dots,
    mixture_attention,
    mixture_dots,
)
from archsearch.ops.combiner.naive import (
    CombinerMasks,
    axial_masks,
    combiner_reference,
    fixed_masks,
    logsparse_masks,
    mixture_masks,
    reference_dots,
)

LENGTHS = (1, 2, 5, 7, 16, 23)


def _qkv(T, B=2, H=2, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, d, generator=g, dtype=torch.float64) for _ in range(3)]


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("block", [1, 3, 4, 30])
@pytest.mark.parametrize("T", LENGTHS)
def test_fixed_matches_naive(T, block, pool):
    q, k, v = _qkv(T)
    want = combiner_reference(q, k, v, fixed_masks(T, block), pool=pool)
    _close(fixed_attention(q, k, v, block, pool), want)


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("T", (*LENGTHS, 32, 33))
def test_logsparse_matches_naive(T, pool):
    q, k, v = _qkv(T)
    want = combiner_reference(q, k, v, logsparse_masks(T), pool=pool)
    _close(logsparse_attention(q, k, v, pool), want)


@pytest.mark.parametrize("keys", ["none", "wsum", "tensor", "proj", "wsum_proj"])
@pytest.mark.parametrize("row", [1, 3, 4, 30])
@pytest.mark.parametrize("T", LENGTHS)
def test_axial_matches_naive(T, row, keys):
    q, k, v = _qkv(T)
    B, H, _, d = q.shape
    m = min(row, T)
    P = -(-T // m) - 1
    W = torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    given = torch.randn(B, H, P, m, d, dtype=torch.float64)

    def flat(x):  # (B, H, P, m, d) <-> (B, H, P·m, d): span Ω = r'·m + c
        return x.reshape(B, H, P * m, d)

    def key_fn(k_wsum, v_bar):  # stands in for the layer's W_p, LayerNorm, W_k2
        return (v_bar if k_wsum is None else k_wsum) @ W

    span_keys = {
        "none": None,
        "wsum": lambda a, v_bar: a @ k,
        "tensor": lambda a, v_bar: flat(given),
        "proj": lambda a, v_bar: v_bar @ W,
        "wsum_proj": lambda a, v_bar: (a @ k) @ W,
    }[keys]
    want = combiner_reference(q, k, v, axial_masks(T, row), span_keys=span_keys)
    summary = given if keys == "tensor" else keys
    got = axial_attention(q, k, v, row, summary, key_fn if "proj" in keys else None)
    _close(got, want)


@pytest.mark.parametrize(("pool", "average"), [("max", False), ("mean", False), ("max", True)])
@pytest.mark.parametrize("row", [1, 2, 3, 4, 30])
@pytest.mark.parametrize("T", LENGTHS)
def test_mixture_matches_naive(T, row, pool, average):
    q, k, v = _qkv(T)
    masks = mixture_masks(T, row)
    fam = masks.families
    plans = [fam["vert"], fam["left"] | fam["right"]] if average else None
    want = combiner_reference(q, k, v, masks, pool=pool, plans=plans)
    _close(mixture_attention(q, k, v, row, pool, average), want)


def test_the_comparison_can_fail():
    q, k, v = _qkv(16)
    assert not torch.allclose(
        fixed_attention(q, k, v, 4), combiner_reference(q, k, v, fixed_masks(16, 5))
    )
    joint = combiner_reference(q, k, v, mixture_masks(16, 4))
    assert not torch.allclose(mixture_attention(q, k, v, 4, average=True), joint)


# ---------------------------------------------------------------------------------------------
# exact dots = what the reference masks need


def _axial_exact(masks: CombinerMasks, wsum: bool) -> int:
    """Axial shares the in-row QKᵀ between the direct logits and the row summaries."""
    used = masks.use.any(0)
    qk = masks.direct.clone()
    qk[masks.span_pos[used]] |= masks.members[used]  # summary of (r', c): q[r', c] · row r'
    summaries = int(masks.members[used].sum())
    direct, terms = int(masks.direct.sum()), int(masks.use.sum())
    return int(qk.sum()) + direct + (1 + wsum) * summaries + 2 * terms


@pytest.mark.parametrize("T", range(1, 41))
def test_exact_dots_count_the_reference_masks(T):
    for block in (1, 2, 3, 4, 5, 7, 64):
        for fn, masks in (
            (fixed_dots, fixed_masks(T, block)),
            (mixture_dots, mixture_masks(T, block)),
        ):
            exact, dense = fn(T, block)
            assert exact == reference_dots(masks) <= dense, (fn.__name__, T, block)
        for wsum in (False, True):
            exact, dense = axial_dots(T, block, wsum)
            assert exact == _axial_exact(axial_masks(T, block), wsum) <= dense, (T, block, wsum)
    exact, dense = logsparse_dots(T)
    assert exact == reference_dots(logsparse_masks(T)) <= dense, T


# ---------------------------------------------------------------------------------------------
# decoding (fixed)


@pytest.mark.parametrize(("block", "pool"), [(1, "max"), (4, "max"), (5, "mean"), (30, "max")])
def test_fixed_decode_step_matches_the_kernel(block, pool):
    T = 23
    q, k, v = _qkv(T)
    want = fixed_attention(q, k, v, block, pool)
    B, H, _, d = q.shape
    state = fixed_decode_init(B, H, d, block, q.dtype, q.device)
    for t in range(T):
        y, state = fixed_decode_step(
            q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], state, pool
        )
        _close(y, want[:, :, t : t + 1])
    assert state.pos == T and state.k_sum.shape[2] == T // block
