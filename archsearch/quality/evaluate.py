"""The fair evaluation protocol for language modelling: sliding windows, each token scored once.

A held-out byte stream ``v[0 .. n)`` is cut into windows of ``T`` inputs with stride ``S``. Window
``k`` holds inputs ``v[kS .. kS+T)`` and predicts ``v[kS+1 .. kS+T]``; only its **last S
predictions** are scored, the targets ``v[kS+T−S+1 .. kS+T]``. Consecutive windows therefore score
consecutive runs of S targets: every target from ``v[T−S+1]`` on is scored **exactly once** (the
first ``T − S + 1`` bytes are context only), and the target at offset ``j`` of a window's scored
run (``j = 0 .. S−1``) always sees ``T − S + 1 + j`` bytes before it.

That is what makes families comparable. A decoder scores all T positions of a training window,
PerceiverAR only its N latents and the Mahmood & Huang variants only their latents, so "mean loss
over the positions a model scores" would give decoders the short-context positions at the start
of each window and PerceiverAR none. Here every model in a comparison uses the same T and S, so
each scored token has the same preceding context under every model; S must not exceed the number
of positions a model scores (``model.n_scored(T)``, the number of latents for PerceiverAR-style
models), and one S is used for every model of a study.

The cost is ``T / S`` forward tokens per scored token; ``S = T/2`` (the default when a model
scores every position) doubles the evaluation compute of non-overlapping windows and guarantees
each scored token at least ``T/2 + 1`` bytes of context.

**Sized from the budget.** By default the held-out size and the number of evaluations follow the
training budget, so evaluation stays under a tenth of a run's wall time: :func:`auto_eval_tokens`
picks the scored bytes from the fewest training tokens any model of a comparison gets (one size
for the whole study, so every model still scores the same bytes), and :func:`auto_evals` picks
how many evenly spaced evaluations a run can afford within :data:`EVAL_SHARE` of its training
compute (that number may differ between models; it changes only the curve, never which bytes the
final and rung values score).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError

LN2 = math.log(2.0)

EVAL_SHARE = 0.08
"""evaluation forward tokens allowed per forward-token equivalent of training (a training token
costs about three forward tokens: forward and backward), so evaluation is ~7% of a run"""
AUTO_EVAL_DIVISOR = 16
"""``eval_tokens: auto`` scores about 1/16 of the fewest training tokens of a comparison"""
AUTO_EVAL_MIN, AUTO_EVAL_MAX = 2048, 65536
MAX_AUTO_EVALS = 8


def auto_eval_tokens(tokens: int | None) -> int:
    """Held-out bytes to score for a study whose runs train on at least ``tokens`` tokens: a power
    of two near ``tokens / 16`` in [2048, 65536]; 65536 when the budget is not in tokens
    (a seconds budget)."""
    if tokens is None:
        return AUTO_EVAL_MAX
    want = max(1, tokens // AUTO_EVAL_DIVISOR)
    return max(AUTO_EVAL_MIN, min(AUTO_EVAL_MAX, 1 << (want.bit_length() - 1)))


def auto_evals(tokens: int | None, eval_forward_tokens: int | None, fixed: int) -> int:
    """Evenly spaced evaluations (after step 0) that a run of ``tokens`` training tokens can
    afford when one evaluation costs ``eval_forward_tokens`` forward tokens and ``fixed`` other
    evaluations (the halving rungs) are made anyway: at least 1, at most 8."""
    if tokens is None or not eval_forward_tokens:
        return MAX_AUTO_EVALS
    affordable = int(EVAL_SHARE * 3 * tokens // eval_forward_tokens)
    return max(1, min(MAX_AUTO_EVALS, affordable - 1 - fixed))


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one evaluation start and which targets they score."""

    seq_len: int
    """T, inputs per window"""
    stride: int
    """S, scored targets per window (its last S predictions)"""
    n_windows: int

    def starts(self) -> range:
        return range(0, self.n_windows * self.stride, self.stride)

    @property
    def n_scored(self) -> int:
        return self.n_windows * self.stride

    def scored_targets(self) -> range:
        """Stream positions of the scored targets, in order (each exactly once)."""
        first = self.seq_len - self.stride + 1
        return range(first, first + self.n_scored)

    @property
    def context(self) -> tuple[int, int]:
        """Fewest and most bytes of context a scored target sees."""
        return self.seq_len - self.stride + 1, self.seq_len


def plan_windows(
    n_bytes: int, seq_len: int, stride: int, max_tokens: int | None = None
) -> WindowPlan:
    """Windows over a stream of ``n_bytes``: as many as fit, or enough for ``max_tokens`` scored
    targets (rounded up to whole windows). Raises :class:`ConfigError` if not even one fits."""
    if not 1 <= stride <= seq_len:
        raise ConfigError("eval_stride", stride, f"an integer in 1..seq_len ({seq_len})")
    # window k needs inputs v[kS .. kS+T) and targets up to v[kS+T]
    fit = (n_bytes - 1 - seq_len) // stride + 1 if n_bytes > seq_len else 0
    if fit < 1:
        raise ConfigError(
            "data",
            f"{n_bytes} held-out bytes",
            f"at least seq_len + 1 = {seq_len + 1} bytes for one evaluation window",
        )
    n = fit if max_tokens is None else min(fit, max(1, math.ceil(max_tokens / stride)))
    return WindowPlan(seq_len, stride, n)


def window_batches(
    stream: np.ndarray, plan: WindowPlan, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs (b, T), scored targets (b, S))`` int64 tensors, windows in order."""
    T, S = plan.seq_len, plan.stride
    starts = np.asarray(plan.starts(), dtype=np.int64)
    cols = np.arange(T + 1, dtype=np.int64)
    for i in range(0, len(starts), batch_size):
        rows = np.asarray(stream[starts[i : i + batch_size, None] + cols], dtype=np.int64)
        chunk = torch.from_numpy(rows)
        yield chunk[:, :T], chunk[:, T + 1 - S :]


@torch.no_grad()
def sliding_window_nll(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    stream: np.ndarray,
    plan: WindowPlan,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the plan's scored targets, and their count.

    ``logits_fn(idx_BT)`` returns logits for the last ``n ≥ S`` positions (a
    :class:`~archsearch.model.transformer.LanguageModel`'s forward); the last S rows are scored.
    """
    total, count = 0.0, 0
    S = plan.stride
    for x, y in window_batches(stream, plan, batch_size):
        logits = logits_fn(x.to(device))
        if logits.shape[1] < S:
            raise ConfigError(
                "eval_stride",
                S,
                f"at most the {logits.shape[1]} positions this model scores in a window of "
                f"{plan.seq_len} (its n_latents for PerceiverAR-style models)",
            )
        nll = F.cross_entropy(
            logits[:, -S:].flatten(0, 1).float(), y.to(device).flatten(), reduction="sum"
        )
        total += float(nll)
        count += y.numel()
    return total, count


def unigram_bits(train: np.ndarray, targets: np.ndarray, vocab: int = 256) -> float:
    """Bits per symbol of ``targets`` under the add-one-smoothed symbol frequencies of ``train``:
    the baseline a model that ignores context can reach."""
    counts = np.bincount(np.asarray(train, dtype=np.int64), minlength=vocab).astype(np.float64)
    logp = np.log2(counts + 1.0) - math.log2(counts.sum() + vocab)
    return float(-logp[np.asarray(targets, dtype=np.int64)].mean())
