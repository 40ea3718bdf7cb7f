"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode``, made version-independent.

FlopCounterMode only counts ops that have a formula; everything else counts 0, silently. In torch
2.13 the CPU attention kernels (``_scaled_dot_product_flash_attention_for_cpu`` and its backward)
have none (pytorch issue 195460), so CPU SDPA counted 0. We pass our own formulas for every SDPA
kernel through ``custom_mapping`` (overriding torch's where it has one), so the count is the same
on every torch version, device and backend. Counts are FLOPs (a multiply-add = 2), dense: masked
blocks count in full, as the kernel computes them.

``count_flops(..., elementwise=True)`` also counts elementwise arithmetic (``mul``, ``add``,
``sub``: one FLOP per output element; ``sum``: one per input element folded away), the work of
mixers whose mixing is elementwise (HSM). Use it on a mixer alone: on a whole model it would also
count residual additions, which the analytic convention leaves out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def _prod(xs: Any) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _sdpa_fwd(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    # (..., Lq, d) @ (..., d, Lk) and (..., Lq, Lk) @ (..., Lk, dv); GQA heads broadcast
    *batch, lq, dq = query
    lk, dv = key[-2], value[-1]
    n = _prod(batch)
    return 2 * n * lq * lk * dq + 2 * n * lq * lk * dv


def _sdpa_bwd(grad_out: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    # recompute scores, dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q: 2 + 3 bmm's
    *batch, lq, dq = query
    lk, dv = key[-2], value[-1]
    n = _prod(batch)
    return 2 * n * lq * lk * (dq + dv + dv + dq + dq)


def _sdpa_ops() -> dict[Any, Callable[..., int]]:
    fwd = [
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    ]
    mapping: dict[Any, Callable[..., int]] = {}
    for name in fwd:
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = _sdpa_fwd
        if hasattr(aten, name + "_backward"):
            mapping[getattr(aten, name + "_backward")] = _sdpa_bwd
    return mapping


def _numel(shape: Any) -> int:
    return _prod(shape) if shape is not None else 1


def _pointwise(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return _numel(out_shape)


def _reduce(self_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # n inputs folded into m outputs take n - m additions
    return _numel(self_shape) - _numel(out_shape)


def _elementwise_ops() -> dict[Any, Callable[..., int]]:
    return {aten.mul: _pointwise, aten.add: _pointwise, aten.sub: _pointwise, aten.sum: _reduce}


@dataclass
class FlopReport:
    total: int
    by_op: dict[str, int] = field(default_factory=dict)


def count_flops(fn: Callable[[], Any], *, elementwise: bool = False) -> FlopReport:
    """Run ``fn()`` under FlopCounterMode (with our SDPA formulas) and return the FLOPs.

    Works on real tensors and on the ``meta`` device (nothing allocated, any length).
    ``elementwise``: also count elementwise arithmetic (see the module docstring).
    """
    mapping = _sdpa_ops()
    if elementwise:
        mapping.update(_elementwise_ops())
    mode = FlopCounterMode(display=False, custom_mapping=mapping)
    with mode:
        fn()
    counts = mode.get_flop_counts().get("Global", {})
    return FlopReport(
        total=int(mode.get_total_flops()),
        by_op={str(k).split(".")[-1]: int(v) for k, v in counts.items()},
    )
