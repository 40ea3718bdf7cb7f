"""Compute-matched training: a FLOPs budget becomes windows of the model's exact training FLOPs."""

from __future__ import annotations

import pytest
from test_train import Counting, tiny  # type: ignore[import-not-found]

from archsearch.errors import ConfigError
from archsearch.quality.train import (
    TrainConfig,
    check_budget_fits,
    train,
    training_flops_per_window,
)


@pytest.mark.parametrize("steps", [4.0, 10.3, 25.7])
def test_flops_spent_within_two_percent_of_the_budget(steps: float) -> None:
    task, model = Counting(), tiny()
    per_window = training_flops_per_window(model, task)
    budget = per_window * 8 * steps
    res = train(model, task, TrainConfig(budget_flops=budget, batch_size=8, evals=2))
    assert res.status == "completed"
    assert res.flops_spent == res.tokens_seen // task.seq_len * per_window
    assert abs(res.flops_spent - budget) / budget < 0.02
    assert res.budget_flops == budget and res.flops_per_window == per_window
    assert res.curve[-1].progress == 1.0 and res.curve[-1].flops == res.flops_spent
    assert "FLOPs" in res.reason


def test_a_dearer_model_gets_fewer_tokens_for_the_same_flops() -> None:
    task = Counting()
    small, big = tiny(), tiny().replace(d_model=64)
    budget = training_flops_per_window(big, task) * 8 * 6
    cfg = TrainConfig(budget_flops=budget, batch_size=8, evals=1)
    a, b = train(small, task, cfg), train(big, task, cfg)
    assert a.tokens_seen > b.tokens_seen
    for r in (a, b):
        assert abs(r.flops_spent - budget) / budget < 0.02


def test_flops_budget_errors() -> None:
    task, model = Counting(), tiny()
    step = training_flops_per_window(model, task) * 16
    with pytest.raises(ConfigError, match="budget_flops.*at least one optimizer step"):
        check_budget_fits(TrainConfig(budget_flops=step / 2), task, model)
    check_budget_fits(TrainConfig(budget_flops=step), task, model)
    with pytest.raises(ConfigError, match="budget_flops.*not both"):
        TrainConfig(budget_flops=1e9, budget_tokens=1000)
    with pytest.raises(ConfigError, match="budget_flops.*not both"):
        TrainConfig(budget_flops=1e9, budget_steps=10)
    with pytest.raises(ConfigError, match="budget_flops: got -1"):
        TrainConfig(budget_flops=-1)
    assert TrainConfig(budget_flops=1e9).budget_mode == "flops"
    assert TrainConfig(budget_tokens=10).budget_mode == "tokens"
