"""Sliding-window causal attention: query ``i`` sees keys ``i − window < j ≤ i``.

``chunk``: the blocked kernel and its pair counts; ``naive``: the dense masked reference.
"""

from archsearch.ops.sliding_window.chunk import sliding_window_attention, sliding_window_pairs
from archsearch.ops.sliding_window.naive import naive_sliding_window_attention, window_mask

__all__ = [
    "naive_sliding_window_attention",
    "sliding_window_attention",
    "sliding_window_pairs",
    "window_mask",
]
