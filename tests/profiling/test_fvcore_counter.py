"""archsearch.profiling.fvcore_counter: our fvcore handles count what FlopCounterMode counts, in
FLOPs, on shapes where fvcore's own handles go wrong; elementwise ops count only in scope."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from archsearch.profiling.counter import count_flops
from archsearch.profiling.fvcore_counter import (
    HANDLES,
    RECORDED_ZERO,
    count_fvcore,
    count_fvcore_default,
)


class Fn(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


def _meta(*shapes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    with torch.device("meta"):
        return tuple(torch.randn(*s) for s in shapes)


MATMULS = {
    "linear-3d": (lambda x, w: nn.functional.linear(x, w), [(2, 7, 8), (5, 8)]),
    "matmul-4d": (lambda a, b: a @ b, [(2, 3, 7, 8), (2, 3, 8, 5)]),
    "matmul-broadcast": (lambda a, b: a @ b, [(5, 8), (3, 4, 8, 6)]),
    "matmul-1d-left": (lambda a, b: a @ b, [(8,), (3, 8, 5)]),
    "bmm": (torch.bmm, [(4, 7, 8), (4, 8, 5)]),
    "einsum-linear-attn-kv": (
        lambda k, v: torch.einsum("bhtd,bhte->bhde", k, v),
        [(2, 3, 7, 4), (2, 3, 7, 5)],
    ),
    "einsum-linear-attn-out": (
        lambda q, s: torch.einsum("bhtd,bhde->bhte", q, s),
        [(2, 3, 7, 4), (2, 3, 4, 5)],
    ),
    "einsum-summed-away": (lambda a, b: torch.einsum("ij,jk->i", a, b), [(4, 5), (5, 6)]),
    "einsum-three": (
        lambda a, b, c: torch.einsum("ij,jk,kl->il", a, b, c),
        [(4, 5), (5, 6), (6, 3)],
    ),
    "einsum-outer": (lambda a, b: torch.einsum("bi,bj->bij", a, b), [(4, 5), (4, 6)]),
    "sdpa-causal": (
        lambda q, k, v: nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
        [(2, 3, 7, 8), (2, 3, 7, 8), (2, 3, 7, 8)],
    ),
    "sdpa-cross": (
        lambda q, k, v: nn.functional.scaled_dot_product_attention(q, k, v),
        [(1, 2, 3, 8), (1, 2, 11, 8), (1, 2, 11, 8)],
    ),
}


@pytest.mark.parametrize("name", MATMULS)
def test_handles_match_flop_counter_mode(name: str):
    fn, shapes = MATMULS[name]
    xs = _meta(*shapes)
    ours = count_fvcore(Fn(fn), xs)
    assert ours.flops == count_flops(lambda: fn(*xs)).total
    assert not ours.unsupported


def test_matmul_with_a_1d_right_operand():
    # FlopCounterMode sees aten.mv, for which it has no formula (it counts 0 and we flag it);
    # the fvcore handle counts the 2·m·k FLOPs
    xs = _meta((3, 5, 8), (8,))
    assert count_fvcore(Fn(lambda a, b: a @ b), xs).flops == 2 * 15 * 8
    r = count_flops(lambda: xs[0] @ xs[1])
    assert r.total == 0 and "mv" in {t.op for t in r.uncounted()}


def test_why_fvcore_matmul_and_sdpa_handles_are_replaced():
    xs = _meta((5, 8), (3, 4, 8, 6))
    right = 3 * 4 * 5 * 8 * 6  # MACs
    assert count_fvcore(Fn(lambda a, b: a @ b), xs).flops == 2 * right
    assert count_fvcore_default(Fn(lambda a, b: a @ b), xs).macs == 5 * 8 * 6  # 12× too few
    fn, shapes = MATMULS["sdpa-causal"]
    shipped = count_fvcore_default(Fn(fn), _meta(*shapes))
    assert shipped.macs == 0 and shipped.unsupported == {"aten::scaled_dot_product_attention": 1}


def test_table_is_one_row_per_op_with_units():
    ops = [h.op for h in HANDLES]
    assert len(ops) == len(set(ops)) and not set(ops) & set(RECORDED_ZERO)
    for h in HANDLES:
        assert h.op.startswith("aten::") and h.what
        assert (h.unit, h.scope) in {("mac", "all"), ("flop", "elementwise_mixers")}


class Mixing(nn.Module):
    """``a ⊙ x + b ⊙ shift(x)`` in ``mix``, then a residual add and a sum outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = Fn(lambda x: 0.5 * x + 0.5 * torch.cat([x[:, :1] * 0, x[:, :-1]], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.mix(x)).sum(-1)


def test_elementwise_ops_count_only_inside_the_scopes():
    (x,) = _meta((2, 6, 4))
    n = 2 * 6 * 4
    inside = count_fvcore(Mixing(), (x,), elementwise_scopes=["mix"])
    # two products and one sum of n elements; the zero pad (a product too) is 1/6 of one
    assert inside.flops == inside.by_op["mul"] + inside.by_op["add"] == 3 * n + n // 6
    assert inside.by_module[""]["add"] == 2 * n  # fvcore saw the residual add too
    outside = {(t.module, t.op): t for t in inside.recorded if t.category == "arithmetic"}
    assert set(outside) == {("", "aten::add"), ("", "aten::sum")}
    assert outside[("", "aten::sum")].elements == 2 * 6
    assert count_fvcore(Mixing(), (x,)).flops == 0  # no scope: nothing elementwise counts
    everywhere = count_fvcore(Mixing(), (x,), elementwise_scopes=[""])
    assert everywhere.flops == inside.flops + n + (n - 2 * 6)  # residual add, sum of n into 12


def test_ops_fvcore_would_ignore_silently_are_recorded():
    (x,) = _meta((2, 6, 4))
    r = count_fvcore(Fn(lambda x: torch.relu(x).clamp(max=1.0)), (x,))
    arith = {t.op: t.elements for t in r.recorded if t.category == "arithmetic"}
    assert arith == {"aten::relu": 48, "aten::clamp": 48}
    train = Fn(lambda x: nn.functional.dropout(x, 0.0, training=True))
    assert all(t.category == "free" for t in count_fvcore(train, (x,)).recorded)
