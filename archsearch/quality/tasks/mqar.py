"""``mqar``: multi-query associative recall (Zoology), judged by held-out accuracy.

Sequences of key-value pairs followed by queries of some of the keys, generated on the fly from a
seed (:mod:`archsearch.quality.mqar`); training batches come from the run's seed, the held-out set
from a fixed ``eval_seed``. The metric is the accuracy on the value that follows each repeated
key (higher is better); every query must fall in the positions the model scores. The baseline is
guessing uniformly among the values a key can map to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError, require
from archsearch.quality.mqar import MQARConfig, mqar_batch, mqar_dataset
from archsearch.quality.tasks._base import Task, eval_mode, register_task

if TYPE_CHECKING:
    from archsearch.model.config import ModelConfig
    from archsearch.model.transformer import LanguageModel


@dataclass(frozen=True, kw_only=True)
class MQARTaskConfig:
    vocab_size: int = 256
    num_pairs: int = 8
    power_a: float | None = 0.01
    """power-law bias of query positions (Zoology's a); null: uniform"""
    eval_examples: int = 1000
    eval_seed: int = 1_000_003
    """seed of the fixed held-out set (training batches come from the run's seed)"""
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        require(self.eval_examples >= 1, "eval_examples", self.eval_examples, ">= 1")
        require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, ">= 1")


@register_task("mqar")
class MQARTask(Task):
    """Multi-query associative recall (Zoology): accuracy on the value after each repeated key."""

    metric = "accuracy"
    metrics = ("loss", "accuracy")
    Config = MQARTaskConfig

    def __init__(self, cfg: MQARTaskConfig, seq_len: int) -> None:
        super().__init__(cfg, seq_len)
        try:
            self.gen_cfg = MQARConfig(
                vocab_size=cfg.vocab_size,
                seq_len=seq_len,
                num_pairs=cfg.num_pairs,
                power_a=cfg.power_a,
            )
        except ConfigError as e:
            raise ConfigError(e.field.removeprefix("mqar."), e.value, e.allowed) from None
        self.eval_x, self.eval_y = mqar_dataset(self.gen_cfg, cfg.eval_examples, seed=cfg.eval_seed)

    @property
    def vocab_needed(self) -> int:
        return self.cfg.vocab_size

    def check_model(self, model: ModelConfig, *, source: str | None = None) -> None:
        super().check_model(model, source=source)
        scored = model.n_scored(self.seq_len)
        need = self.seq_len - 2 * self.cfg.num_pairs
        if scored < need:
            raise ConfigError(
                "family",
                model.family.kind,
                f"a model that scores the whole query region: mqar queries lie in the last "
                f"{need} of {self.seq_len} positions but this model scores only {scored} "
                "(raise n_latents or num_pairs)",
                source=source,
            )

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return mqar_batch(self.gen_cfg, batch_size, generator=generator)

    @torch.no_grad()
    def evaluate(self, model: LanguageModel, device: torch.device | str) -> dict[str, float]:
        nll, correct, count = 0.0, 0, 0
        bs = self.cfg.eval_batch_size
        with eval_mode(model):
            for i in range(0, len(self.eval_x), bs):
                x = self.eval_x[i : i + bs].to(device)
                logits = model(x).float()
                y = self.eval_y[i : i + bs, x.shape[1] - logits.shape[1] :].to(device)
                keep = y != -100
                nll += float(F.cross_entropy(logits[keep], y[keep], reduction="sum"))
                correct += int((logits[keep].argmax(-1) == y[keep]).sum())
                count += int(keep.sum())
        return {"loss": nll / count, "accuracy": correct / count, "queries": float(count)}

    def baseline(self) -> dict[str, float]:
        # guessing uniformly among the values a key can map to
        return {"chance_accuracy": 1.0 / (self.cfg.vocab_size - self.cfg.vocab_size // 2)}
