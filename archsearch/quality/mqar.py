"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology"), generated on the fly.

Layout of one sequence of ``seq_len`` tokens with ``P = num_pairs`` and ``V = vocab_size``:

* context region, positions ``0 .. 2P-1``: ``k1 v1 k2 v2 ... kP vP``. Keys are ``P`` distinct tokens
  from ``1 .. V//2 - 1`` (token 0 is the filler); values are drawn independently, with replacement,
  from ``V//2 .. V-1``.
* query region, positions ``2P .. seq_len-1``: divided into ``S = ceil((seq_len - 2P) / 2)`` slots;
  slot ``j`` is positions ``2P + 2j`` (key) and ``2P + 2j + 1`` (value). ``P`` distinct slots are
  chosen; each key is queried exactly once, in a uniformly random order (a random permutation
  assigns pairs to chosen slots). Only the key is written; the slot's second position, like every
  other position, is the filler 0. If ``seq_len - 2P`` is odd, the last slot has only its key
  position.

Targets are for next-token prediction: ``-100`` (ignored) everywhere except at each query's key
position ``t``, where ``targets[t]`` is that key's value. The values of the queries exist only as
targets, as in Zoology: were each query followed by its value in the inputs, a model could answer
later queries by elimination (the values already shown are not the answer) without recalling
anything; a 2-layer softmax model trained that way reached 88% on the last queries and 16% on the
first.

Slot choice (``power_a``): as in Zoology, slot ``j`` (0-based) has weight ``a * (j + 1) ** (a - 1)``
with ``a = power_a``, and the ``P`` slots are drawn *without replacement*, each successive draw
proportional to the weights of the slots still free (``torch.multinomial`` semantics, the same
distribution as Zoology's ``np.random.choice(replace=False, p=...)``). For ``a < 1`` early slots
are favoured, so most queries come soon after the context and long-range recall is rare; ``a = 1``
and ``power_a=None`` are uniform over slots; ``a > 1`` favours late slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from archsearch.errors import require

__all__ = ["MQARConfig", "mqar_batch", "mqar_dataset"]

IGNORE = -100
FILLER = 0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class MQARConfig:
    """One MQAR task: vocabulary, sequence length, pairs per sequence and query placement."""

    vocab_size: int = 8192
    seq_len: int = 256
    num_pairs: int = 16
    power_a: float | None = 0.01

    def __post_init__(self) -> None:
        v, t, p, a = self.vocab_size, self.seq_len, self.num_pairs, self.power_a
        require(_is_int(v) and v >= 4, "mqar.vocab_size", v, "an integer >= 4")
        require(_is_int(p) and p >= 1, "mqar.num_pairs", p, "an integer >= 1")
        require(
            p <= v // 2 - 1,
            "mqar.num_pairs",
            p,
            f"at most vocab_size // 2 - 1 = {v // 2 - 1} (distinct keys from 1..{v // 2 - 1})",
        )
        require(
            _is_int(t) and t >= 4 * p,
            "mqar.seq_len",
            t,
            f"an integer >= 4 * num_pairs = {4 * p} (context plus one query slot per pair)",
        )
        ok_a = a is None or (
            isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) and a > 0
        )
        require(ok_a, "mqar.power_a", a, "null (uniform) or a finite number > 0")

    def query_region_start(self) -> int:
        """First position after the ``k1 v1 ... kP vP`` context."""
        return 2 * self.num_pairs

    def _num_slots(self) -> int:
        return (self.seq_len - self.query_region_start() + 1) // 2


def _slot_weights(cfg: MQARConfig, device: torch.device) -> torch.Tensor:
    """Unnormalised slot weights: ``(j + 1) ** (a - 1)`` (the factor ``a`` cancels), or ones."""
    n = cfg._num_slots()
    if cfg.power_a is None:
        return torch.ones(n, dtype=torch.float64, device=device)
    j = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    return j ** (cfg.power_a - 1.0)


def mqar_batch(
    cfg: MQARConfig, batch: int, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` fresh examples: ``(inputs, targets)``, both int64 ``(batch, seq_len)``.

    Tensors live on ``generator.device``; the same generator state gives the same batch.
    """
    require(_is_int(batch) and batch >= 1, "mqar.batch", batch, "an integer >= 1")
    dev = generator.device
    p, v, t = cfg.num_pairs, cfg.vocab_size, cfg.seq_len
    start = cfg.query_region_start()

    # Distinct keys: the P largest of V//2 - 1 uniform draws is a random ordered sample.
    noise = torch.rand(batch, v // 2 - 1, generator=generator, device=dev)
    keys = noise.topk(p, dim=1).indices + 1
    values = torch.randint(v // 2, v, (batch, p), generator=generator, device=dev)

    weights = _slot_weights(cfg, dev).expand(batch, -1)
    slots = torch.multinomial(weights, p, replacement=False, generator=generator)
    # Draw order correlates with the weights; shuffle so pair i's slot is independent of i.
    order = torch.rand(batch, p, generator=generator, device=dev).argsort(dim=1)
    key_pos = start + 2 * slots.gather(1, order)

    inputs = torch.full((batch, t), FILLER, dtype=torch.int64, device=dev)
    inputs[:, 0:start:2] = keys
    inputs[:, 1:start:2] = values
    inputs.scatter_(1, key_pos, keys)
    targets = torch.full((batch, t), IGNORE, dtype=torch.int64, device=dev)
    targets.scatter_(1, key_pos, values)
    return inputs, targets


def mqar_dataset(cfg: MQARConfig, n: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set of ``n`` examples (CPU), identical for the same ``cfg`` and ``seed``."""
    require(_is_int(n) and n >= 1, "mqar.n", n, "an integer >= 1")
    require(_is_int(seed), "mqar.seed", seed, "an integer")
    return mqar_batch(cfg, n, generator=torch.Generator().manual_seed(seed))
