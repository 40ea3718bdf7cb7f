"""Causal attention inside contiguous groups: a first group ``[0, first)``, then groups of
``group`` tokens (the last one shorter). S2-Attn runs it with ``first = 0`` (aligned groups) and
``first = group/2`` (groups shifted by half a group, without wrapping).

``chunk``: the blocked kernel and its pair counts; ``naive``: the dense masked reference.
"""

from archsearch.ops.grouped.chunk import grouped_causal_attention, grouped_pairs, segment_runs
from archsearch.ops.grouped.naive import grouped_mask, naive_grouped_causal_attention

__all__ = [
    "grouped_causal_attention",
    "grouped_mask",
    "grouped_pairs",
    "naive_grouped_causal_attention",
    "segment_runs",
]
