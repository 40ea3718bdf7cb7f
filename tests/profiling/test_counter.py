"""archsearch.profiling.counter: FlopCounterMode with our SDPA formulas, per-module counts named
by path, and a tally of every dispatched op so nothing counts 0 silently."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.profiling.counter import FlopReport, classify, count_flops


class Toy(nn.Module):
    """A linear, then ops the counter has no formula for, then free data movement."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(8, 16, bias=False), nn.LayerNorm(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inner(x)  # (B, T, 16)
        h = torch.cat([h, h.transpose(-1, -2)[..., :16, :].transpose(-1, -2)], dim=-1)
        return F.softmax(h, dim=-1) * 2.0


def _run(device: str = "meta", **kw: object) -> FlopReport:
    with torch.device(device):
        m = Toy()
        x = torch.randn(2, 16, 8)
    return count_flops(lambda: m(x), module=m, **kw)


def test_total_and_by_op_are_unchanged():
    r = _run()
    assert r.total == r.by_op["mm"] == 2 * 2 * 16 * 8 * 16
    assert _run("cpu").total == r.total


def test_modules_are_named_by_path():
    r = _run()
    assert r.by_module[""] == {"mm": r.total}  # the root, including its submodules
    assert r.by_module["inner"] == r.by_module["inner.0"] == {"mm": r.total}
    assert "inner.1" not in r.by_module  # LayerNorm: nothing counted
    # called other than through __call__ (as LanguageModel.loss calls forward), the root is
    # never entered: alone, the counter then names modules by type from the first one it sees
    with torch.device("meta"):
        m, x = Toy(), torch.randn(2, 16, 8)
    assert "Sequential.0" in count_flops(lambda: m.forward(x)).by_module
    assert "inner.0" in count_flops(lambda: m.forward(x), module=m).by_module


def test_every_dispatched_op_is_tallied_and_classified():
    r = _run()
    by = {(t.module, t.op): t for t in r.ops}
    assert by[("inner.0", "mm")].category == "counted"
    assert by[("inner.1", "native_layer_norm")].category == "arithmetic"
    assert by[("", "cat")].category == "free"
    assert by[("", "transpose")].category == "free"
    uncounted = {t.op: t for t in r.uncounted()}
    assert set(uncounted) == {"native_layer_norm", "_softmax", "mul"}
    assert uncounted["_softmax"].calls == 1
    assert uncounted["_softmax"].elements == uncounted["mul"].elements == 2 * 16 * 32
    assert uncounted["native_layer_norm"].elements == 2 * 16 * 16


def test_elementwise_ops_are_counted_when_asked_and_located():
    r = _run(elementwise=True)
    assert r.by_op["mul"] == 2 * 16 * 32
    assert {t.op for t in r.uncounted()} == {"native_layer_norm", "_softmax"}
    assert r.flops_in(["inner"], ["mul"]) == 0  # the mul runs in the root, not in inner
    assert r.flops_in([""], ["mul"]) == 2 * 16 * 32


def test_classify_masks_and_indices_are_free():
    assert classify("ge", counted=False, floating_output=False) == "free"
    assert classify("add", counted=False, floating_output=False) == "free"  # integer arithmetic
    assert classify("add", counted=False, floating_output=True) == "arithmetic"
    assert classify("add", counted=True, floating_output=True) == "counted"
    assert classify("masked_fill", counted=False, floating_output=True) == "free"


def test_sdpa_backward_formula_is_five_matmuls_against_two():
    from archsearch.profiling.counter import _sdpa_bwd, _sdpa_fwd

    q = k = v = (2, 3, 10, 8)
    assert _sdpa_fwd(q, k, v) == 2 * 2 * (2 * 3 * 10 * 10 * 8)
    assert 2 * _sdpa_bwd(q, q, k, v) == 5 * _sdpa_fwd(q, k, v)
