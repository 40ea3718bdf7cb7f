"""archsearch: architecture search and complexity profiling for efficient-attention LMs.

Importing the package is cheap (no torch). Heavy modules live in subpackages:
``archsearch.mixers`` (token mixers + registry), ``archsearch.model`` (configs and the LM),
``archsearch.profiling`` (FLOP counting), ``archsearch.testing`` (the mixer conformance suite).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
