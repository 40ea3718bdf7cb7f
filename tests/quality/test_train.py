"""The training run: budgets, schedule, determinism, learning curve, NaN abort, early stop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError
from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.transformer import build_model
from archsearch.quality.tasks import Task
from archsearch.quality.train import StopTraining, TrainConfig, train


@dataclass(frozen=True)
class CountingConfig:
    pass


class Counting(Task):
    """Sequences ``a, a+k, a+2k, ... (mod V)`` with a random start and step: learnable in a few
    dozen steps by a tiny model, so the loop's behaviour can be tested end to end."""

    name = "counting"
    metric = "accuracy"
    higher_is_better = True
    Config = CountingConfig

    def __init__(self, seq_len: int = 12, vocab: int = 16) -> None:
        super().__init__(CountingConfig(), seq_len)
        self.vocab = vocab
        self.eval_x, self.eval_y = self.sample(32, torch.Generator().manual_seed(99))

    @property
    def vocab_needed(self) -> int:
        return self.vocab

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        a = torch.randint(0, self.vocab, (batch_size, 1), generator=generator)
        k = torch.randint(1, 4, (batch_size, 1), generator=generator)
        seq = (a + k * torch.arange(self.seq_len + 1)) % self.vocab
        return seq[:, :-1], seq[:, 1:]

    @torch.no_grad()
    def evaluate(self, model: Any, device: Any) -> dict[str, float]:
        was = model.training
        model.eval()
        logits = model(self.eval_x)[:, 2:]  # from the third token on the step is known
        y = self.eval_y[:, 2:]
        model.train(was)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return {"loss": float(loss), "accuracy": float((logits.argmax(-1) == y).float().mean())}


def tiny(vocab: int = 16) -> ModelConfig:
    return ModelConfig(
        d_model=32,
        vocab_size=vocab,
        max_seq_len=32,
        layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=2)),) * 2,
    )


def test_short_run_learns_and_records_the_curve() -> None:
    task = Counting()
    cfg = TrainConfig(budget_steps=60, batch_size=16, lr=1e-2, evals=4)
    res = train(tiny(), task, cfg)
    assert res.status == "completed" and res.steps == 60
    assert res.tokens_seen == 60 * 16 * task.seq_len
    assert [p.step for p in res.curve] == [0, 15, 30, 45, 60]
    assert res.curve[0].train_loss is None and all(p.train_loss for p in res.curve[1:])
    assert len(res.train_losses) == 60
    first, last = res.curve[0].metrics, res.final
    assert last["loss"] < 0.5 * first["loss"]
    assert last["accuracy"] > 0.5 > first["accuracy"]
    assert res.best["value"] == max(p.metrics["accuracy"] for p in res.curve)
    assert res.tokens_per_s > 0 and res.wall_seconds >= res.train_seconds > 0
    assert res.params == sum(p.numel() for p in build_model(tiny()).parameters())


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    cfg = TrainConfig(budget_steps=8, batch_size=4, evals=2, seed=3)
    a = train(tiny(), Counting(), cfg)
    b = train(tiny(), Counting(), cfg)
    c = train(tiny(), Counting(), cfg.__class__(**{**cfg.__dict__, "seed": 4}))
    assert a.train_losses == b.train_losses and a.final == b.final
    assert a.train_losses != c.train_losses


def test_token_budget_sets_the_steps_and_the_schedule_ends_at_min_lr() -> None:
    task = Counting(seq_len=10)
    cfg = TrainConfig(budget_tokens=10 * 4 * 7 - 5, batch_size=4, evals=1, warmup=0.2)
    assert cfg.total_steps(40) == 7  # rounded up to whole steps
    res = train(tiny(), task, cfg)
    assert res.steps == 7
    assert cfg.lr_at(0.0) == 0.0 and cfg.lr_at(0.2) == pytest.approx(cfg.lr)
    assert cfg.lr_at(1.0) == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    lrs = [cfg.lr_at(p / 100) for p in range(20, 101)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:], strict=False))  # cosine decays monotonically


def test_seconds_budget_stops_the_run() -> None:
    res = train(tiny(), Counting(), TrainConfig(budget_seconds=0.3, batch_size=2, evals=2))
    assert res.status == "completed" and res.steps >= 1
    assert res.train_seconds < 0.3 + 5.0  # the step in flight is allowed to finish


class PoisonedAt(Counting):
    """The loss becomes NaN from the ``at``-th training step on (evaluation is unaffected)."""

    def __init__(self, at: int, value: float = math.nan) -> None:
        super().__init__()
        self.at, self.value, self.calls = at, value, 0

    def loss(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = super().loss(model, x, y)
        return loss * self.value if self.calls >= self.at else loss


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_loss_aborts_with_a_clear_reason(value: float) -> None:
    cfg = TrainConfig(budget_steps=50, batch_size=2, evals=5)
    res = train(tiny(), PoisonedAt(7, value), cfg)
    assert res.status == "diverged"
    assert res.steps == 6  # the six good steps were taken, the seventh was not
    assert f"became {value} at step 7" in res.reason and "lr" in res.reason
    # the curve so far survives: step 0 and the first point (every 10 steps) is not reached
    assert [p.step for p in res.curve] == [0]
    assert res.final == res.curve[0].metrics


def test_on_eval_can_stop_a_run_early() -> None:
    seen: list[int] = []

    def stop_after_first(point: Any) -> None:
        seen.append(point.step)
        if point.step > 0:
            raise StopTraining("pruned at the first report")

    res = train(
        tiny(),
        Counting(),
        TrainConfig(budget_steps=20, batch_size=2, evals=4),
        on_eval=stop_after_first,
    )
    assert res.status == "stopped" and res.reason == "pruned at the first report"
    assert seen == [0, 5] and res.steps == 5


def test_ctrl_c_keeps_the_partial_curve() -> None:
    def interrupt(step: int, *_: Any) -> None:
        if step == 4:
            raise KeyboardInterrupt

    res = train(
        tiny(), Counting(), TrainConfig(budget_steps=20, batch_size=2, evals=10), on_step=interrupt
    )
    assert res.status == "interrupted" and "step 4" in res.reason
    assert [p.step for p in res.curve] == [0, 2]
    assert res.steps == 4


def test_model_task_mismatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="vocab_size: got 8; allowed: >= 16"):
        train(tiny(vocab=8), Counting(), TrainConfig(budget_steps=1))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({}, "budget"),
        ({"budget_steps": 0}, "budget_steps"),
        ({"budget_steps": 1, "lr": -1}, "lr"),
        ({"budget_steps": 1, "warmup": 1.0}, "warmup"),
    ],
)
def test_bad_train_config(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        TrainConfig(**kw)


@pytest.mark.gpu
def test_bf16_autocast_run_on_cuda() -> None:
    from archsearch.profiling.profiles import Profile

    prof = Profile(name="cuda-bf16", device="cuda", dtype="bfloat16")
    res = train(
        tiny(), Counting(), TrainConfig(budget_steps=40, batch_size=16, lr=1e-2, evals=2), prof
    )
    assert res.status == "completed" and res.env["device"] == "cuda"
    assert res.final["loss"] < res.curve[0].metrics["loss"]


@pytest.mark.slow
def test_torch_compile_trains_like_eager() -> None:
    cfg = TrainConfig(budget_steps=5, batch_size=4, evals=1)
    eager = train(tiny(), Counting(), cfg)
    compiled = train(tiny(), Counting(), TrainConfig(**{**cfg.__dict__, "compile": True}))
    assert compiled.status == "completed"
    assert compiled.final["loss"] == pytest.approx(eager.final["loss"], rel=1e-3)
