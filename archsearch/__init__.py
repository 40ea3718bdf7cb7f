"""archsearch: architecture search and complexity profiling for efficient-attention LMs.

Importing the package is cheap (no torch). Heavy modules live in subpackages:
``archsearch.mixers`` (token mixers + registry), ``archsearch.model`` (configs and the LM),
``archsearch.profiling`` (FLOP counting), ``archsearch.testing`` (the mixer conformance suite).

Layers, highest to lowest: cli → search → quality → profiling → model → mixers → ops →
dataconf/yamlio/metrics/fmt → errors. A module imports its own package or lower ones only, at
the top of the file (the CLI alone imports lazily, so ``--help`` stays cheap);
``tests/test_architecture.py`` checks it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
