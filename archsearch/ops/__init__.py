"""Attention kernels, each beside a dense naive reference (below the mixers in the layering).

One sub-package per operation, laid out as in flash-linear-attention: the fast (blocked) path in
``chunk.py`` (Combiner: one file per variant) with the function that counts the query-key pairs
or dots it computes right beside it, and ``naive.py``, a plain masked T×T computation that is
obviously correct and is what the tests compare the fast path with (float64, small shapes).

* :mod:`archsearch.ops.sliding_window`: each query sees the last ``window`` keys;
* :mod:`archsearch.ops.grouped`: causal attention inside contiguous groups (S2-Attn's aligned
  and shifted groups);
* :mod:`archsearch.ops.pairwise_segment`: each segment sees the previous one and itself (ECP);
* :mod:`archsearch.ops.combiner`: Combiner fixed, logsparse, axial and mixture, and the fixed
  variant's one-token decoding step;
* :mod:`archsearch.ops.rope`: rotary position embedding;
* :mod:`archsearch.ops.dense`: the masked softmax attention the references share.

Modules here import torch and nothing from ``archsearch`` above them (no mixers, no models):
they take ``(B, H, T, d)`` tensors and plain integers, and know nothing of configs.
"""
