"""Measuring cost: FLOP counting (and, in later issues, memory and latency)."""
