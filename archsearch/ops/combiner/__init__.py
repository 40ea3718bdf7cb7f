"""Combiner attention kernels (Ren et al., NeurIPS 2021, arXiv 2107.05768; docs/architectures.md,
"Combiner"): one file per variant with its blocked kernel and its dot counts, and ``naive``, the
dense masked reference of all four.

Every query scores a small *direct* set exactly and the rest of its past as a few *spans*; a span
enters the query's softmax once, through a pooled key, and brings its local expectation. All
kernels take (B, H, T, d) q, k and (B, H, T, dv) v, any T (zero-padded to whole blocks/rows; the
padding is in the future of every real query), and never build a T×T tensor. The ``*_dots``
functions return (exact, dense) *dots* per head, a dot being one d-wide product (``2·d`` FLOPs):
exact counts only what a block-sparse kernel needs for the real tokens (unmasked direct and span
terms and the summaries some query uses), dense what the code computes.
"""

from archsearch.ops.combiner.axial import KeyFn, axial_attention, axial_dots
from archsearch.ops.combiner.fixed import (
    FixedDecodeState,
    fixed_attention,
    fixed_decode_init,
    fixed_decode_step,
    fixed_dots,
)
from archsearch.ops.combiner.logsparse import (
    logsparse_attention,
    logsparse_dots,
    logsparse_levels,
    logsparse_spans,
)
from archsearch.ops.combiner.mixture import mixture_attention, mixture_dots

__all__ = [
    "FixedDecodeState",
    "KeyFn",
    "axial_attention",
    "axial_dots",
    "fixed_attention",
    "fixed_decode_init",
    "fixed_decode_step",
    "fixed_dots",
    "logsparse_attention",
    "logsparse_dots",
    "logsparse_levels",
    "logsparse_spans",
    "mixture_attention",
    "mixture_dots",
]
