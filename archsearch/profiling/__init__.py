"""Measuring cost: FLOPs three ways, memory, latency, and how they grow with the sequence length.

* :mod:`archsearch.profiling.counter`: ``FlopCounterMode`` with archsearch's SDPA formulas,
  per-module counts and a tally of the ops it counted 0;
* :mod:`archsearch.profiling.fvcore_counter`: fvcore ``FlopCountAnalysis`` with handles for every
  op our models use, in FLOPs, and as shipped;
* :mod:`archsearch.profiling.flops`: the two counters reconciled with the analytic formulas
  (``compare_flops``, ``compare_mixer_flops``);
* :mod:`archsearch.profiling.memory`: peak memory estimated without a GPU (fake tensors) or
  measured on CUDA; :mod:`archsearch.profiling.timing`: latency (CUDA events / perf_counter);
* :mod:`archsearch.profiling.profiles`: measurement presets (``profiles/*.yaml``);
  :mod:`archsearch.profiling.runner`: one variant at one length; :mod:`archsearch.profiling.report`:
  scaling reports; :mod:`archsearch.profiling.scaling`: log-log fits.
"""
