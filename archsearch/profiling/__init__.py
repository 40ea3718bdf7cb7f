"""Measuring cost: FLOP counting (``counter``), peak memory estimated without a GPU or measured on
CUDA (``memory``), latency (``timing``), and growth with the sequence length (``scaling``)."""
