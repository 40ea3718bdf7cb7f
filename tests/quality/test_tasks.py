"""The task registry: registration checks, one-line errors that list the registered tasks, and the
CLI help and validation reading the registry instead of a fixed list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.metrics import get_metric
from archsearch.quality.evaluate import auto_eval_tokens, auto_evals
from archsearch.quality.tasks import (
    TASKS,
    LMTask,
    Task,
    _base,
    get_task,
    make_task,
    register_task,
    task_names,
)


@pytest.fixture
def registry() -> Iterator[None]:
    """Tasks registered inside a test are forgotten after it."""
    saved = dict(_base._REGISTRY)
    yield
    _base._REGISTRY.clear()
    _base._REGISTRY.update(saved)


@dataclass(frozen=True, kw_only=True)
class EchoConfig:
    width: int = 4


def echo_task(metric: str = "accuracy", metrics: tuple[str, ...] = ("loss", "accuracy")) -> type:
    """A fresh, unregistered task class: copy the input (any model can try)."""

    class Echo(Task):
        Config = EchoConfig

        @property
        def vocab_needed(self) -> int:
            return self.cfg.width

        def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
            x = torch.randint(0, self.cfg.width, (batch_size, self.seq_len), generator=generator)
            return x, x

        def evaluate(self, model: Any, device: Any) -> dict[str, float]:
            return {"loss": 0.0, "accuracy": 1.0}

    Echo.metric, Echo.metrics = metric, metrics
    return Echo


def test_shipped_tasks_are_registered_in_order_with_registered_metrics() -> None:
    assert task_names()[:3] == ("lm", "mqar", "scifar")
    for name in task_names():
        cls = get_task(name)
        assert cls.name == name and TASKS[name] is cls
        assert cls.metric in cls.metrics and "loss" in cls.metrics
        for m in cls.metrics:
            assert get_metric(m).kind == "quality"
        assert cls.higher_is_better == (get_metric(cls.metric).direction == "maximize")
    assert not LMTask.higher_is_better and get_task("mqar").higher_is_better
    assert get_task("scifar").sets_seq_len and not LMTask.sets_seq_len


def test_a_registered_task_is_built_and_listed_in_errors(registry: None) -> None:
    cls = register_task("echo_test")(echo_task())
    assert cls.name == "echo_test" and cls.higher_is_better
    assert task_names()[-1] == "echo_test" and TASKS["echo_test"] is cls
    task = make_task("echo_test", {"width": 8}, seq_len=6)
    assert isinstance(task, cls) and task.cfg.width == 8 and task.seq_len == 6
    assert task.describe() == {"name": "echo_test", "metric": "accuracy", "seq_len": 6, "width": 8}
    with pytest.raises(ConfigError) as e:
        make_task("nope", seq_len=6)
    assert str(e.value) == "task: got 'nope'; allowed: one of " + ", ".join(task_names())
    assert "echo_test" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"^task\.widht: "):
        make_task("echo_test", {"widht": 8}, seq_len=6)
    with pytest.raises(ConfigError, match=r"^seq_len: got None"):
        make_task("echo_test", seq_len=None)


def test_get_task_names_the_field_it_reads() -> None:
    with pytest.raises(ConfigError, match=r"^--task: got 'lmm'; allowed: one of lm, mqar, scifar"):
        get_task("lmm", field="--task")


def test_a_name_registered_twice_is_refused(registry: None) -> None:
    register_task("echo_twice")(echo_task())
    with pytest.raises(ValueError, match="'echo_twice' is registered twice"):
        register_task("echo_twice")(echo_task())
    with pytest.raises(ValueError, match="'lm' is registered twice"):
        register_task("lm")(echo_task())
    assert TASKS["lm"] is LMTask


def test_an_unknown_metric_name_is_refused(registry: None) -> None:
    with pytest.raises(ConfigError) as e:
        register_task("echo_bad")(echo_task("acc", ("loss", "acc")))
    msg = str(e.value)
    assert msg.startswith("Echo.metrics: got 'acc'; allowed: one of ") and "accuracy" in msg
    with pytest.raises(ConfigError, match=r"^Echo.metrics: got 'params'; allowed: one of bits_"):
        register_task("echo_bad")(echo_task("params", ("loss", "params")))  # not a quality metric
    assert "echo_bad" not in task_names()


def test_the_headline_metric_and_loss_must_be_reported(registry: None) -> None:
    with pytest.raises(ValueError, match="must include 'loss' and the headline metric"):
        register_task("echo_headline")(echo_task("perplexity", ("loss", "accuracy")))
    with pytest.raises(ValueError, match="must include 'loss'"):
        register_task("echo_noloss")(echo_task("accuracy", ("accuracy",)))
    assert not {"echo_headline", "echo_noloss"} & set(task_names())


def test_the_direction_comes_from_the_metric(registry: None) -> None:
    cls = register_task("echo_ppl")(echo_task("perplexity", ("loss", "perplexity")))
    assert cls.higher_is_better is False


def test_comparable_options_fix_the_lm_stride_once_for_a_study() -> None:
    auto = {"eval_tokens": 65536}  # no token count known (a seconds budget): the largest size
    assert LMTask.comparable_options({}, 64) == {"eval_stride": 32, **auto}
    assert LMTask.comparable_options({"eval_stride": 5}, 64) == {"eval_stride": 5, **auto}
    assert LMTask.comparable_options({"eval_stride": None}, 1) == {"eval_stride": 1, **auto}
    opts = {"num_pairs": 3}
    assert get_task("mqar").comparable_options(opts, 64) == opts


def test_an_automatic_held_out_size_follows_the_fewest_tokens_of_a_study() -> None:
    # a power of two near tokens / 16, within 2048 .. 65536; an explicit size is kept
    assert LMTask.comparable_options({}, 64, 100_000)["eval_tokens"] == 4096
    assert LMTask.comparable_options({}, 64, 10_000)["eval_tokens"] == 2048
    assert LMTask.comparable_options({}, 64, 10**9)["eval_tokens"] == 65536
    assert LMTask.comparable_options({"eval_tokens": 777}, 64, 100_000)["eval_tokens"] == 777
    assert LMTask.comparable_options({"eval_tokens": None}, 64, 100)["eval_tokens"] is None
    assert auto_eval_tokens(16 * 8192) == 8192 and auto_eval_tokens(16 * 8192 - 1) == 4096


def test_automatic_evaluations_keep_evaluation_a_small_share_of_the_compute() -> None:
    # one evaluation of 8192 forward tokens; a run of 100k tokens costs ~300k forward tokens,
    # 8% of which (24k) pays for 2 evaluations besides step 0 and the final one
    assert auto_evals(100_000, 8192, fixed=0) == 1
    assert auto_evals(1_000_000, 8192, fixed=0) == 8  # capped
    assert auto_evals(100_000, 8192, fixed=1) == 1  # never below one
    assert auto_evals(1_000_000, 8192, fixed=2) == 8
    assert auto_evals(None, 8192, fixed=0) == 8  # a seconds budget: the old default
    for tokens in (50_000, 200_000, 3_000_000):
        n = auto_evals(tokens, 8192, fixed=1)
        if n > 1:  # step 0, the rung, n points: within the share
            assert (n + 2) * 8192 <= 0.08 * 3 * tokens


def test_train_help_and_errors_list_a_task_registered_at_run_time(
    registry: None, tmp_path: Path
) -> None:
    register_task("echo_cli")(echo_task())
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "lm, mqar, scifar or echo_cli." in r.stdout and "{tasks}" not in r.stdout
    model = tmp_path / "m.yaml"
    model.write_text(
        "d_model: 16\nvocab_size: 256\nmax_seq_len: 8\n"
        "layers:\n  - {repeat: 1, mixer: {kind: softmax, n_heads: 2}}\n"
    )
    args = ["train", str(model), "--task", "lmm", "--budget-steps", "1", "-o", str(tmp_path / "o")]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert r.stderr == "error: task: got 'lmm'; allowed: one of lm, mqar, scifar, echo_cli\n"
