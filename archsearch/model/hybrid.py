"""Hybrid stacks (cheap mixer layers with a few softmax layers) and parameter matching.

A hybrid is plain data, a per-layer block list (``ModelConfig.layers``); these helpers build that
list from the two numbers a search samples, the number of softmax layers and their placement, and
widen the MLPs of cheap layers so that a model has the parameter count of a reference (HSM's
"parameters allocated to feed-forward networks"; docs/architectures.md, "Hybrid stacks" — a
reconstruction [R]).

Placements of ``k`` softmax layers in an ``n``-layer stack (0-indexed):

* ``first``: ``0 … k−1``; ``last``: ``n−k … n−1``;
* ``middle``: a contiguous run starting at ``(n − k) // 2``;
* ``interleave``: evenly spread, the j-th at ``⌊(j+1)·n/k⌋ − 1`` (so every (n/k)-th layer when k
  divides n, the last layer included); or, with ``every=m``, exactly every m-th layer
  (``m−1, 2m−1, …``);
* ``explicit``: the given ``positions``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from archsearch.errors import ConfigError, require
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.transformer import count_params

PLACEMENTS = ("first", "last", "middle", "interleave", "explicit")


def softmax_positions(
    n_layers: int,
    n_softmax: int | None,
    placement: str,
    *,
    every: int | None = None,
    positions: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Layer indices of the softmax layers (sorted); see the module docstring."""
    require(n_layers >= 1, "n_layers", n_layers, "an integer >= 1")
    require(placement in PLACEMENTS, "placement", placement, "one of " + ", ".join(PLACEMENTS))
    n, k = n_layers, n_softmax
    if placement == "explicit":
        if positions is None:
            raise ConfigError("positions", allowed="a list of layer indices (placement explicit)")
        pos = tuple(sorted(positions))
        require(
            len(set(pos)) == len(pos) and all(0 <= p < n for p in pos),
            "positions",
            list(positions),
            f"distinct layer indices in [0, {n})",
        )
        given = f"positions={list(pos)}"
    elif placement == "interleave" and every is not None:
        require(every >= 1, "every", every, "an integer >= 1")
        pos = tuple(i for i in range(n) if (i + 1) % every == 0)
        given = f"every={every}"
    else:
        require(k is not None and 0 <= k <= n, "n_softmax", k, f"an integer in [0, n_layers={n}]")
        assert k is not None
        if placement == "first":
            return tuple(range(k))
        if placement == "last":
            return tuple(range(n - k, n))
        if placement == "middle":
            return tuple(range((n - k) // 2, (n - k) // 2 + k))
        return tuple((j + 1) * n // k - 1 for j in range(k))
    if k is not None and k != len(pos):
        raise ConfigError("n_softmax", k, f"{len(pos)} (what {given} gives) or null")
    return pos


def hybrid_layers(
    n_layers: int,
    hsm: BlockConfig,
    softmax: BlockConfig,
    n_softmax: int | None,
    placement: str,
    *,
    every: int | None = None,
    positions: Sequence[int] | None = None,
) -> tuple[BlockConfig, ...]:
    """``n_layers`` blocks: ``softmax`` at :func:`softmax_positions`, ``hsm`` everywhere else.

    Any two block configs work; the names say what the search uses them for.
    """
    pos = set(softmax_positions(n_layers, n_softmax, placement, every=every, positions=positions))
    return tuple(softmax if i in pos else hsm for i in range(n_layers))


def match_params(
    cfg: ModelConfig, reference: ModelConfig, *, widen: Sequence[str] = ("hsm",)
) -> ModelConfig:
    """``cfg`` with one common MLP width for its blocks whose mixer kind is in ``widen``, chosen so
    that its total parameter count is as close as possible to ``reference``'s.

    Parameters are affine in that width h (each widened MLP has ``(2·D + bias)·h + …``), so the
    best h is solved for and rounded; the achieved gap is at most half a step, ``n_widened·(2D +
    bias)/2`` parameters. ``mlp_ratio`` is set to ``h / d_model`` (exactly h hidden units).
    """
    idx = {i for i, b in enumerate(cfg.layers) if b.mixer.kind in widen}
    if not idx:
        kinds = sorted({b.mixer.kind for b in cfg.layers})
        raise ConfigError("widen", list(widen), "mixer kinds the model has: " + ", ".join(kinds))
    D = cfg.d_model

    def with_hidden(h: int) -> ModelConfig:
        layers = tuple(
            dataclasses.replace(b, mlp_ratio=h / D) if i in idx else b
            for i, b in enumerate(cfg.layers)
        )
        return cfg.replace(layers=layers)

    def total(h: int) -> int:
        return count_params(with_hidden(h))["total"]

    target = count_params(reference)["total"]
    p1 = total(1)
    step = total(2) - p1
    guess = max(1, 1 + round((target - p1) / step))
    best = min(
        (h for h in (guess - 1, guess, guess + 1) if h >= 1),
        key=lambda h: abs(p1 + (h - 1) * step - target),
    )
    return with_hidden(best)
