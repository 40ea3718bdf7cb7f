"""archsearch: architecture search and complexity profiling for efficient-attention LMs.

Importing the package is cheap (no torch). Heavy modules live in subpackages:
``archsearch.mixers`` (token mixers + registry), ``archsearch.model`` (configs and the LM),
``archsearch.profiling`` (FLOP counting), ``archsearch.testing`` (the mixer conformance suite).

Layers, highest to lowest: cli → search → quality → profiling → model → mixers → ops →
dataconf/yamlio/metrics/fmt → errors. A module imports its own package or lower ones only, at
the top of the file (the CLI alone imports lazily, so ``--help`` stays cheap);
``tests/test_architecture.py`` checks it.
"""

from typing import Any

__version__ = "0.1.0"

#: the Python API (:mod:`archsearch.api`), imported on first use so ``import archsearch`` stays
#: cheap: ``archsearch.load_model``, ``count_flops``, ``build``, ``profile``, ``train``,
#: ``run_search``, ``report``, ``load_trained`` (``archsearch.search`` is the subpackage)
API = (
    "build",
    "count_flops",
    "load_model",
    "load_trained",
    "profile",
    "report",
    "run_search",
    "train",
)

__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from archsearch import api

        return getattr(api, name)
    raise AttributeError(f"module 'archsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
