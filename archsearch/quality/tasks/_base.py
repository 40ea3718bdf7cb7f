"""The task base class and the task registry.

A task is what a variant is trained on and the held-out metric it is judged by. Each one is a
:class:`Task` subclass in its own module of this package, registered by name with
:func:`register_task`; :func:`make_task` builds one from its options, and every list of task
names (CLI help, error messages) comes from :func:`task_names`. The metrics a task reports are
registered metrics (:mod:`archsearch.metrics`), so a search space can name them as objectives or
constraints (docs/search.md, "Metrics").
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from archsearch.dataconf import from_dict, to_dict
from archsearch.errors import ConfigError
from archsearch.metrics import all_metrics, get_metric

if TYPE_CHECKING:
    import torch

    from archsearch.model.config import ModelConfig
    from archsearch.model.transformer import LanguageModel


class Task(abc.ABC):
    """One quality task bound to a window length T (``seq_len``).

    :func:`register_task` sets :attr:`name` and derives :attr:`higher_is_better` from the
    direction of :attr:`metric` in the metric registry."""

    name: ClassVar[str]
    metric: ClassVar[str]
    """the headline held-out metric (a registered metric; one of :attr:`metrics`)"""
    higher_is_better: ClassVar[bool]
    metrics: ClassVar[tuple[str, ...]]
    """every held-out metric :meth:`evaluate` returns besides counts (registered metrics)"""
    Config: ClassVar[type]
    """the frozen dataclass of the task's options"""
    sets_seq_len: ClassVar[bool] = False
    """the task fixes the window length itself (``seq_len`` may be None)"""

    def __init__(self, cfg: Any, seq_len: int) -> None:
        self.cfg = cfg
        self.seq_len = seq_len

    @classmethod
    def comparable_options(
        cls, options: Mapping[str, Any], seq_len: int, tokens: int | None = None
    ) -> dict[str, Any]:
        """``options`` with the defaults that must be the same for every model of a comparison
        (a search study) filled in; ``tokens``: the fewest training tokens any of its runs gets
        (None: unknown), which sizes settings that follow the budget. By default unchanged."""
        return cls.sized_options(options, tokens)

    @classmethod
    def sized_options(cls, options: Mapping[str, Any], tokens: int | None) -> dict[str, Any]:
        """``options`` with the settings that follow the budget (``tokens``: the fewest training
        tokens of the runs to be compared) resolved; by default unchanged."""
        return dict(options)

    def eval_forward_tokens(self) -> int | None:
        """Forward tokens one held-out evaluation costs (None: unknown); sizes the automatic
        number of evaluations of a run."""
        return None

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


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the block, its previous mode restored after it."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


_REGISTRY: dict[str, type[Task]] = {}

TASKS: Mapping[str, type[Task]] = MappingProxyType(_REGISTRY)
"""name -> task class, in registration order (a read-only view of the registry)"""

TaskClass = TypeVar("TaskClass", bound=type[Task])


def register_task(name: str) -> Callable[[TaskClass], TaskClass]:
    """Class decorator: register a :class:`Task` subclass as task ``name``.

    Refuses a name registered twice, a ``metrics`` entry that is not a registered quality metric
    (a one-line :class:`ConfigError` listing them), ``metrics`` without ``loss`` or the headline
    :attr:`~Task.metric`, and a ``Config`` that is not a dataclass."""

    def add(cls: TaskClass) -> TaskClass:
        where = cls.__name__
        if name in _REGISTRY:
            raise ValueError(
                f"task {name!r} is registered twice ({_REGISTRY[name].__name__} and {where})"
            )
        quality = all_metrics("quality")
        for m in cls.metrics:
            if get_metric(m, field=f"{where}.metrics").kind != "quality":
                raise ConfigError(f"{where}.metrics", m, "one of " + ", ".join(quality))
        if "loss" not in cls.metrics or cls.metric not in cls.metrics:
            raise ValueError(
                f"{where}.metrics {cls.metrics!r} must include 'loss' and the headline metric "
                f"{cls.metric!r}"
            )
        if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
            raise ValueError(f"{where}.Config must be a dataclass of the task's options")
        cls.name = name
        cls.higher_is_better = get_metric(cls.metric).direction == "maximize"
        _REGISTRY[name] = cls
        return cls

    return add


def task_names() -> tuple[str, ...]:
    """The registered task names, in registration order."""
    return tuple(_REGISTRY)


def get_task(name: str, field: str = "task") -> type[Task]:
    """The task class registered as ``name``; a one-line :class:`ConfigError` listing the
    registered names otherwise."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    raise ConfigError(field, name, "one of " + ", ".join(_REGISTRY))


def make_task(name: str, options: dict[str, Any] | None = None, *, seq_len: int | None) -> Task:
    """Build task ``name`` from its options (YAML-like values); errors name ``task.<field>``."""
    cls = get_task(name)
    try:
        cfg = from_dict(cls.Config, dict(options or {}))
    except ConfigError as e:
        raise e.located(prefix="task") from None
    if seq_len is None and not cls.sets_seq_len:
        raise ConfigError("seq_len", None, "an integer >= 1 (the training window T)")
    try:
        return cls(cfg, seq_len)  # type: ignore[arg-type]
    except ConfigError as e:
        if e.field in ("data", "seq_len", "format"):
            raise
        raise e.located(prefix="task") from None
