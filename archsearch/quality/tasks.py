"""Quality tasks: what a variant is trained on, and the metric it is judged by.

Every task draws training batches from a seeded generator, computes the training loss through the
model's :class:`~archsearch.model.transformer.LanguageModel` interface and evaluates on held-out
data the training batches never touch:

=========  ==============================================  ================================
task       data                                            metric (held out)
=========  ==============================================  ================================
``lm``     bytes of a corpus (``archsearch.quality.data``)  bits per byte (lower is better);
           — the embedded stdlib-docs corpus by default    perplexity per byte; unigram
                                                           baseline of the same targets
``mqar``   multi-query associative recall, generated       accuracy on the queried values
           on the fly from a seed (Zoology)                (higher is better)
``scifar`` sequential CIFAR-10: the 32×32 image as 1024    classification accuracy
           gray (or 3072 RGB) pixel tokens                 (higher is better)
=========  ==============================================  ================================

``lm`` is evaluated with the sliding-window protocol of :mod:`archsearch.quality.evaluate`
(every held-out byte scored once, with the same context under every model). ``mqar`` scores the
value that follows each repeated key; every query must fall in the positions the model scores.
``scifar`` reads the class from the logits of the **last** position restricted to the first 10
vocabulary entries, i.e. the model predicts a class token ``0..9`` after the last pixel.
Validation for ``scifar`` is the last 10% of the training images (the test batch is used only
with ``eval_split: test``), so a search never selects on the test set; the same holds for ``lm``.
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.dataconf import from_dict, to_dict
from archsearch.errors import ConfigError, require
from archsearch.quality.evaluate import LN2, plan_windows, sliding_window_nll, unigram_bits

if TYPE_CHECKING:
    from archsearch.model.config import ModelConfig
    from archsearch.model.transformer import LanguageModel


@dataclass(frozen=True, kw_only=True)
class LMTaskConfig:
    data: str | None = None
    """a text file or folder, enwik8, a WikiText-103 raw folder or a PG-19 folder; null: the
    embedded corpus (the Python standard library's documentation topics)"""
    format: Literal["auto", "text", "enwik8", "wikitext103", "pg19"] = "auto"
    max_bytes: int | None = None
    """read at most this many training bytes (PG-19 reads 1 GiB of books unless set)"""
    eval_stride: int | None = None
    """S: scored targets per evaluation window; null: min(T/2, positions the model scores).
    Use one S for every model of a comparison."""
    eval_tokens: int | None = 65536
    """held-out bytes scored per evaluation (whole windows); null: the whole split"""
    eval_split: Literal["valid", "test"] = "valid"
    eval_batch_size: int = 8

    def __post_init__(self) -> None:
        require(
            self.eval_stride is None or self.eval_stride >= 1,
            "eval_stride",
            self.eval_stride,
            "an integer >= 1 or null",
        )
        require(
            self.eval_tokens is None or self.eval_tokens >= 1,
            "eval_tokens",
            self.eval_tokens,
            "an integer >= 1 or null",
        )
        require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, ">= 1")


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


class Task(abc.ABC):
    """One quality task bound to a window length T (``seq_len``)."""

    name: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    metrics: ClassVar[tuple[str, ...]]
    """every held-out metric :meth:`evaluate` returns (besides counts)"""
    Config: ClassVar[type]

    def __init__(self, cfg: Any, seq_len: int) -> None:
        self.cfg = cfg
        self.seq_len = seq_len

    # -- what the model must satisfy --

    #: smallest vocabulary the task's tokens need
    @property
    @abc.abstractmethod
    def vocab_needed(self) -> int: ...

    def check_model(self, model: ModelConfig, *, source: str | None = None) -> None:
        """One-line :class:`ConfigError` if the model cannot run this task at ``seq_len``."""
        if model.vocab_size < self.vocab_needed:
            raise ConfigError(
                "vocab_size",
                model.vocab_size,
                f">= {self.vocab_needed}: the {self.name} task uses token ids "
                f"0..{self.vocab_needed - 1}",
                source=source,
            )
        try:
            model.check_seq_len(self.seq_len)
        except ConfigError as e:
            raise e.located(source=source) from None

    # -- training --

    @abc.abstractmethod
    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """One training batch ``(inputs, targets)`` (CPU tensors)."""

    def loss(self, model: LanguageModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the positions the model scores (-100 targets ignored)."""
        return model.loss(x, y)

    # -- evaluation --

    @abc.abstractmethod
    def evaluate(self, model: LanguageModel, device: torch.device | str) -> dict[str, float]:
        """Held-out metrics; always ``loss`` (nats) and :attr:`metric`."""

    def describe(self) -> dict[str, Any]:
        """What the result record says about the task (data identity, sizes, protocol)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "seq_len": self.seq_len,
            **to_dict(self.cfg),
        }

    def baseline(self) -> dict[str, float]:
        """Context-free reference values of the metric (e.g. the unigram bits per byte)."""
        return {}


def _eval_mode(model: torch.nn.Module) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        was = model.training
        model.eval()
        try:
            yield
        finally:
            model.train(was)

    return ctx()


class LMTask(Task):
    """Byte-level language modelling; bits per byte with the sliding-window protocol."""

    name = "lm"
    metric = "bits_per_byte"
    higher_is_better = False
    metrics = ("loss", "bits_per_byte", "perplexity")
    Config = LMTaskConfig

    def __init__(self, cfg: LMTaskConfig, seq_len: int) -> None:
        from archsearch.quality.data import load_corpus

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
        self.plan = plan_windows(len(self.held), self.seq_len, self.stride, self.cfg.eval_tokens)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        T = self.seq_len
        starts = torch.randint(0, len(self.train) - T, (batch_size,), generator=generator)
        rows = self.train[starts.numpy()[:, None] + np.arange(T + 1)]
        chunk = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return chunk[:, :T], chunk[:, 1:]

    def evaluate(self, model: LanguageModel, device: torch.device | str) -> dict[str, float]:
        with _eval_mode(model):
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


class MQARTask(Task):
    """Multi-query associative recall (Zoology): accuracy on the value after each repeated key."""

    name = "mqar"
    metric = "accuracy"
    higher_is_better = True
    metrics = ("loss", "accuracy")
    Config = MQARTaskConfig

    def __init__(self, cfg: MQARTaskConfig, seq_len: int) -> None:
        from archsearch.quality.mqar import MQARConfig, mqar_dataset

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
        from archsearch.quality.mqar import mqar_batch

        return mqar_batch(self.gen_cfg, batch_size, generator=generator)

    @torch.no_grad()
    def evaluate(self, model: LanguageModel, device: torch.device | str) -> dict[str, float]:
        nll, correct, count = 0.0, 0, 0
        bs = self.cfg.eval_batch_size
        with _eval_mode(model):
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


class SCIFARTask(Task):
    """Sequential CIFAR-10 classification: pixels as tokens, the class after the last pixel."""

    name = "scifar"
    metric = "accuracy"
    higher_is_better = True
    metrics = ("loss", "accuracy")
    Config = SCIFARTaskConfig
    n_classes = 10

    def __init__(self, cfg: SCIFARTaskConfig, seq_len: int | None) -> None:
        from archsearch.quality.cifar import load_cifar10, to_sequence

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
        with _eval_mode(model):
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


TASKS: dict[str, type[Task]] = {t.name: t for t in (LMTask, MQARTask, SCIFARTask)}


def make_task(name: str, options: dict[str, Any] | None = None, *, seq_len: int | None) -> Task:
    """Build task ``name`` from its options (YAML-like values); errors name ``task.<field>``."""
    if name not in TASKS:
        raise ConfigError("task", name, "one of " + ", ".join(TASKS))
    cls = TASKS[name]
    try:
        cfg = from_dict(cls.Config, dict(options or {}))
    except ConfigError as e:
        raise e.located(prefix="task") from None
    if seq_len is None and cls is not SCIFARTask:
        raise ConfigError("seq_len", None, "an integer >= 1 (the training window T)")
    try:
        return cls(cfg, seq_len)  # type: ignore[arg-type]
    except ConfigError as e:
        if e.field in ("data", "seq_len", "format"):
            raise
        raise e.located(prefix="task") from None
