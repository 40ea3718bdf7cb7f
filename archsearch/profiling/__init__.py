"""Measuring cost: FLOP counting (and, in later issues, memory and latency).

* :mod:`archsearch.profiling.counter`: ``FlopCounterMode`` with archsearch's SDPA formulas,
  per-module counts and a tally of the ops it counted 0;
* :mod:`archsearch.profiling.fvcore_counter`: fvcore ``FlopCountAnalysis`` with handles for every
  op our models use, in FLOPs, and as shipped;
* :mod:`archsearch.profiling.flops`: the two counters reconciled with the analytic formulas
  (``compare_flops``, ``compare_mixer_flops``).
"""
