"""``scifar``: sequential CIFAR-10 classification, judged by held-out accuracy.

The 32×32 image is a sequence of 1024 gray (or 3072 RGB) pixel tokens
(:mod:`archsearch.quality.cifar`); the class is read from the logits of the **last** position
restricted to the first 10 vocabulary entries, i.e. the model predicts a class token ``0..9``
after the last pixel. The window length follows from the mode, so ``seq_len`` may be left unset.
Validation is the last 10% of the training images (the test batch is used only with
``eval_split: test``), so a search never selects on the test set. The baseline is the accuracy
of always answering the training set's majority class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError, require
from archsearch.quality.cifar import load_cifar10, to_sequence
from archsearch.quality.tasks._base import Task, eval_mode, register_task

if TYPE_CHECKING:
    from archsearch.model.transformer import LanguageModel


@dataclass(frozen=True, kw_only=True)
class SCIFARTaskConfig:
    data: str | None = None
    """the cifar-10-batches-py folder (or its parent, or cifar-10-python.tar.gz); required"""
    mode: Literal["gray", "rgb"] = "gray"
    """gray: 1024 luminance tokens per image; rgb: 3072 tokens (r, g, b of each pixel)"""
    eval_examples: int | None = 1000
    """held-out images per evaluation; null: all"""
    eval_split: Literal["valid", "test"] = "valid"
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        require(
            self.eval_examples is None or self.eval_examples >= 1,
            "eval_examples",
            self.eval_examples,
            "an integer >= 1 or null",
        )
        require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, ">= 1")


@register_task("scifar")
class SCIFARTask(Task):
    """Sequential CIFAR-10 classification: pixels as tokens, the class after the last pixel."""

    metric = "accuracy"
    metrics = ("loss", "accuracy")
    Config = SCIFARTaskConfig
    sets_seq_len = True
    n_classes = 10

    def __init__(self, cfg: SCIFARTaskConfig, seq_len: int | None) -> None:
        length = 1024 if cfg.mode == "gray" else 3072
        if seq_len is not None and seq_len != length:
            raise ConfigError(
                "seq_len",
                seq_len,
                f"{length}: scifar in {cfg.mode} mode is one token per "
                f"{'pixel' if cfg.mode == 'gray' else 'pixel channel'} (or leave it unset)",
            )
        super().__init__(cfg, length)
        if cfg.data is None:
            raise ConfigError(
                "data",
                None,
                "the CIFAR-10 python release: the cifar-10-batches-py folder (data_batch_1..5, "
                "test_batch) or cifar-10-python.tar.gz; pass --data PATH",
            )
        splits = load_cifar10(cfg.data)
        self.source = splits.source
        x = torch.from_numpy(to_sequence(splits.train_x, cfg.mode))
        y = torch.from_numpy(splits.train_y)
        n_valid = max(1, len(x) // 10)
        if len(x) < 2:
            raise ConfigError(
                "data", cfg.data, "at least 2 training images (one for training, one to validate)"
            )
        self.train_x, self.train_y = x[:-n_valid], y[:-n_valid]
        if cfg.eval_split == "valid":
            ex, ey = x[-n_valid:], y[-n_valid:]
        else:
            ex = torch.from_numpy(to_sequence(splits.test_x, cfg.mode))
            ey = torch.from_numpy(splits.test_y)
        n = len(ex) if cfg.eval_examples is None else min(cfg.eval_examples, len(ex))
        self.eval_x, self.eval_y = ex[:n], ey[:n]
        self.sizes = {"train": len(self.train_x), "valid": n_valid, "test": len(splits.test_x)}

    @property
    def vocab_needed(self) -> int:
        return 256

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, len(self.train_x), (batch_size,), generator=generator)
        return self.train_x[idx], self.train_y[idx]

    def class_logits(self, model: LanguageModel, x: torch.Tensor) -> torch.Tensor:
        return model(x)[:, -1, : self.n_classes].float()

    def loss(self, model: LanguageModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.class_logits(model, x), y)

    @torch.no_grad()
    def evaluate(self, model: LanguageModel, device: torch.device | str) -> dict[str, float]:
        nll, correct = 0.0, 0
        bs = self.cfg.eval_batch_size
        with eval_mode(model):
            for i in range(0, len(self.eval_x), bs):
                logits = self.class_logits(model, self.eval_x[i : i + bs].to(device))
                y = self.eval_y[i : i + bs].to(device)
                nll += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(-1) == y).sum())
        n = len(self.eval_x)
        return {"loss": nll / n, "accuracy": correct / n, "images": float(n)}

    def baseline(self) -> dict[str, float]:
        counts = torch.bincount(self.train_y, minlength=self.n_classes)
        majority = int(counts.argmax())
        return {"majority_accuracy": float((self.eval_y == majority).float().mean())}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": self.source, "sizes": self.sizes}
