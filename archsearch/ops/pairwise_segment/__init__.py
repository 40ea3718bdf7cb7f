"""Pairwise segment attention (ECP / LLP): segment 0 attends itself causally; every later segment
attends the whole previous segment and itself causally.

``chunk``: the blocked kernel and its pair counts; ``naive``: the dense masked reference.
"""

from archsearch.ops.pairwise_segment.chunk import (
    pairwise_pairs,
    pairwise_segment_attention,
    segment_bounds,
)
from archsearch.ops.pairwise_segment.naive import (
    naive_pairwise_segment_attention,
    pairwise_segment_mask,
)

__all__ = [
    "naive_pairwise_segment_attention",
    "pairwise_pairs",
    "pairwise_segment_attention",
    "pairwise_segment_mask",
    "segment_bounds",
]
