"""The sliding-window protocol: every held-out target scored once, with a known context."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.quality.evaluate import (
    plan_windows,
    sliding_window_nll,
    unigram_bits,
    window_batches,
)


@pytest.mark.parametrize(("n", "T", "S"), [(200, 16, 8), (97, 10, 10), (64, 12, 1), (50, 7, 3)])
def test_each_target_scored_exactly_once_in_order(n: int, T: int, S: int) -> None:
    stream = np.arange(n)  # each value names its own position
    plan = plan_windows(n, T, S)
    xs, ys = zip(*window_batches(stream, plan, batch_size=3), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (plan.n_windows, T) and y.shape == (plan.n_windows, S)
    scored = y.flatten().tolist()
    # contiguous, no repeats, no gaps, starting after the first T - S + 1 context-only bytes
    assert scored == list(range(T - S + 1, T - S + 1 + plan.n_windows * S))
    assert scored == list(plan.scored_targets())
    # as many windows as fit: one more would need a byte past the end
    assert scored[-1] <= n - 1 < scored[-1] + S
    for k in range(plan.n_windows):
        assert x[k].tolist() == list(range(k * S, k * S + T))
        # the j-th scored target of a window sees every input of the window up to itself
        for j, target in enumerate(y[k].tolist()):
            context = target - k * S
            assert context == T - S + 1 + j
    lo, hi = plan.context
    assert (lo, hi) == (T - S + 1, T)


def test_max_tokens_rounds_up_to_whole_windows() -> None:
    plan = plan_windows(10_000, 32, 16, max_tokens=100)
    assert plan.n_windows == 7 and plan.n_scored == 112
    assert plan_windows(100, 32, 16, max_tokens=10**9).n_windows == (100 - 1 - 32) // 16 + 1


def test_too_short_and_bad_stride_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="at least seq_len \\+ 1 = 33 bytes") as e:
        plan_windows(32, 32, 16)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="eval_stride"):
        plan_windows(1000, 32, 33)
    with pytest.raises(ConfigError, match="eval_stride"):
        plan_windows(1000, 32, 0)


def _bigram_model(logp: torch.Tensor, rows: int | None = None):
    """A 'model' whose next-token log-probabilities depend only on the current token."""

    def logits_fn(idx_BT: torch.Tensor) -> torch.Tensor:
        out = logp[idx_BT]
        return out if rows is None else out[:, -rows:]

    return logits_fn


def test_nll_matches_an_independent_sum_over_the_scored_targets() -> None:
    g = torch.Generator().manual_seed(0)
    V, n, T, S = 11, 301, 24, 8
    logp = torch.log_softmax(torch.randn(V, V, generator=g), dim=-1)
    stream = torch.randint(0, V, (n,), generator=g).numpy().astype(np.uint8)
    plan = plan_windows(n, T, S)
    nll, count = sliding_window_nll(_bigram_model(logp), stream, plan, batch_size=5)
    # independent: every target position from T - S + 1 on, predicted from the byte before it
    positions = range(T - S + 1, T - S + 1 + plan.n_windows * S)
    expect = -sum(float(logp[stream[p - 1], stream[p]]) for p in positions)
    assert count == len(positions)
    assert nll == pytest.approx(expect, rel=1e-6)
    # a model that returns only its last S rows (PerceiverAR with S latents) scores the same
    nll_s, _ = sliding_window_nll(_bigram_model(logp, rows=S), stream, plan, batch_size=5)
    assert nll_s == pytest.approx(nll, rel=1e-6)


def test_stride_above_the_models_scored_rows_is_refused() -> None:
    logp = torch.log_softmax(torch.zeros(4, 4), dim=-1)
    stream = np.zeros(100, dtype=np.uint8)
    with pytest.raises(ConfigError, match="at most the 4 positions this model scores"):
        sliding_window_nll(_bigram_model(logp, rows=4), stream, plan_windows(100, 16, 8))


def test_unigram_bits_is_the_smoothed_cross_entropy() -> None:
    train = np.array([0, 0, 0, 1], dtype=np.uint8)
    targets = np.array([0, 1, 2], dtype=np.uint8)
    # add-one counts over a 4-symbol alphabet: 4, 2, 1, 1 of 8
    expect = -(math.log2(4 / 8) + math.log2(2 / 8) + math.log2(1 / 8)) / 3
    assert unigram_bits(train, targets, vocab=4) == pytest.approx(expect)
