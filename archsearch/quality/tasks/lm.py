"""``lm``: byte-level language modelling, judged by held-out bits per byte.

Training batches are random windows of a byte corpus (:mod:`archsearch.quality.data`; the
embedded Python standard library documentation topics by default, ``data: stdlib`` for the
~12 MB standard library source). Evaluation uses the
sliding-window protocol of :mod:`archsearch.quality.evaluate`: every held-out byte is scored once,
with the same context under every model, so numbers of different models are comparable when they
share one ``eval_stride``. The held-out split is ``valid`` unless ``eval_split: test`` is asked
for, so a search never selects on the test set. Metrics: bits per byte (lower is better),
perplexity per byte and the loss in nats; the baseline is the unigram bits per byte of the same
targets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from archsearch.dataconf import MAX_BATCH, MAX_COUNT, MAX_SEQ_LEN, check_int
from archsearch.errors import ConfigError
from archsearch.quality.data import load_corpus
from archsearch.quality.evaluate import (
    AUTO_EVAL_MAX,
    LN2,
    auto_eval_tokens,
    plan_windows,
    sliding_window_nll,
    unigram_bits,
)
from archsearch.quality.tasks._base import Task, eval_mode, register_task

if TYPE_CHECKING:
    from archsearch.model.config import ModelConfig
    from archsearch.model.transformer import LanguageModel


@dataclass(frozen=True, kw_only=True)
class LMTaskConfig:
    data: str | None = None
    """a text file or folder, enwik8, a WikiText-103 raw folder or a PG-19 folder, or a built-in
    corpus (no download): null or ``pydoc``, the standard library's documentation topics (~466 KB,
    quickstarts), or ``stdlib``, the standard library's source (~12 MB, runs of millions of
    tokens); a path named stdlib is ``./stdlib``"""
    format: Literal["auto", "text", "enwik8", "wikitext103", "pg19"] = "auto"
    max_bytes: int | None = None
    """read at most this many training bytes (PG-19 reads 1 GiB of books unless set)"""
    eval_stride: int | None = None
    """S: scored targets per evaluation window; null: min(T/2, positions the model scores).
    Use one S for every model of a comparison."""
    eval_tokens: int | Literal["auto"] | None = "auto"
    """held-out bytes scored per evaluation (whole windows); null: the whole split; auto: sized
    from the budget, about 1/16 of the fewest training tokens any model of the comparison gets, a
    power of two in 2048..65536 (65536 with a seconds budget)"""
    eval_split: Literal["valid", "test"] = "valid"
    eval_batch_size: int = 8

    def __post_init__(self) -> None:
        for name, high in (("eval_stride", MAX_SEQ_LEN), ("eval_tokens", MAX_COUNT)):
            if getattr(self, name) not in (None, "auto"):
                check_int(name, getattr(self, name), 1, high)
        check_int("eval_batch_size", self.eval_batch_size, 1, MAX_BATCH)


@register_task("lm")
class LMTask(Task):
    """Byte-level language modelling; bits per byte with the sliding-window protocol."""

    metric = "bits_per_byte"
    metrics = ("loss", "bits_per_byte", "perplexity")
    Config = LMTaskConfig

    @classmethod
    def comparable_options(
        cls, options: Mapping[str, Any], seq_len: int, tokens: int | None = None
    ) -> dict[str, Any]:
        """One evaluation stride for every model (the decoder default, T/2) unless one is set:
        the default of :meth:`check_model` depends on the positions a model scores. An automatic
        ``eval_tokens`` becomes one number for every model, sized from ``tokens``."""
        out = dict(options)
        if out.get("eval_stride") is None:
            out["eval_stride"] = max(1, seq_len // 2)
        return cls.sized_options(out, tokens)

    @classmethod
    def sized_options(cls, options: Mapping[str, Any], tokens: int | None) -> dict[str, Any]:
        out = dict(options)
        if out.get("eval_tokens", "auto") == "auto":
            out["eval_tokens"] = auto_eval_tokens(tokens)
        return out

    def __init__(self, cfg: LMTaskConfig, seq_len: int) -> None:
        super().__init__(cfg, seq_len)
        self.corpus = load_corpus(cfg.data, fmt=cfg.format, max_bytes=cfg.max_bytes)
        self.train = self.corpus.train
        held = self.corpus.valid if cfg.eval_split == "valid" else self.corpus.test
        if held is None:
            raise ConfigError(
                "eval_split",
                cfg.eval_split,
                f"'valid': the {self.corpus.name} corpus has no test split",
            )
        self.held = held
        for split, data in (("train", self.train), (cfg.eval_split, held)):
            if len(data) < seq_len + 2:
                raise ConfigError(
                    "data",
                    self.corpus.source,
                    f"a corpus whose {split} split has more than seq_len + 1 = {seq_len + 1} "
                    f"bytes (it has {len(data)}); use a shorter --seq-len or more text",
                )
        self.stride: int | None = cfg.eval_stride

    @property
    def vocab_needed(self) -> int:
        return 256

    def check_model(self, model: ModelConfig, *, source: str | None = None) -> None:
        super().check_model(model, source=source)
        scored = model.n_scored(self.seq_len)
        if self.stride is None:
            self.stride = min(scored, max(1, self.seq_len // 2))
        if not 1 <= self.stride <= scored:
            raise ConfigError(
                "eval_stride",
                self.stride,
                f"1..{scored}: the positions this model scores in a window of {self.seq_len} "
                "(n_latents for PerceiverAR-style models); use one stride for every model",
                source=source,
            )
        want = self.cfg.eval_tokens
        want = AUTO_EVAL_MAX if want == "auto" else want  # unresolved: no budget known
        self.plan = plan_windows(len(self.held), self.seq_len, self.stride, want)

    def eval_forward_tokens(self) -> int | None:
        plan = getattr(self, "plan", None)
        return None if plan is None else plan.n_windows * plan.seq_len

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        T = self.seq_len
        starts = torch.randint(0, len(self.train) - T, (batch_size,), generator=generator)
        rows = self.train[starts.numpy()[:, None] + np.arange(T + 1)]
        chunk = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return chunk[:, :T], chunk[:, 1:]

    def evaluate(self, model: LanguageModel, device: torch.device | str) -> dict[str, float]:
        with eval_mode(model):
            nll, n = sliding_window_nll(
                model, self.held, self.plan, batch_size=self.cfg.eval_batch_size, device=device
            )
        loss = nll / n
        return {
            "loss": loss,
            "bits_per_byte": loss / LN2,
            "perplexity": math.exp(min(loss, 700.0)),
            "scored_bytes": float(n),
        }

    def baseline(self) -> dict[str, float]:
        targets = self.held[np.asarray(self.plan.scored_targets())]
        return {"unigram_bits_per_byte": unigram_bits(self.train, targets)}

    def describe(self) -> dict[str, Any]:
        c = self.corpus
        return {
            **super().describe(),
            "eval_stride": self.stride,
            "corpus": {
                "name": c.name,
                "source": c.source,
                "sha256": c.sha256,
                "sizes": c.sizes(),
                "notes": c.notes,
            },
            "eval_windows": self.plan.n_windows,
            "eval_scored_bytes": self.plan.n_scored,
            "eval_context": list(self.plan.context),
        }
