"""MQAR generator: structure of every example, determinism, power-law placement, validation."""

from __future__ import annotations

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.quality.mqar import MQARConfig, mqar_batch, mqar_dataset


def _check_example(cfg: MQARConfig, x: torch.Tensor, y: torch.Tensor) -> None:
    """Every structural promise for one example (plain Python, independent of the generator)."""
    p, v, t = cfg.num_pairs, cfg.vocab_size, cfg.seq_len
    start = cfg.query_region_start()
    xs, ys = x.tolist(), y.tolist()
    keys, values = xs[0:start:2], xs[1:start:2]
    assert len(set(keys)) == p
    assert all(1 <= k < v // 2 for k in keys)
    assert all(v // 2 <= val < v for val in values)
    value_of = dict(zip(keys, values, strict=True))
    assert all(target == -100 for target in ys[:start])  # no target in the context region

    queried = []
    pos = start
    while pos < t:
        tok = xs[pos]
        if tok == 0:
            assert ys[pos] == -100
            pos += 1
            continue
        # A query: key at an even offset of the query region; its value is only the target (as
        # in Zoology), so earlier answers cannot reveal later ones
        assert (pos - start) % 2 == 0
        assert tok in value_of
        assert ys[pos] == value_of[tok]
        if pos + 1 < t:
            assert xs[pos + 1] == 0
            assert ys[pos + 1] == -100
        queried.append(tok)
        pos += 2
    assert sorted(queried) == sorted(keys)  # every key exactly once
    assert sum(target != -100 for target in ys) == p


@pytest.mark.parametrize(
    "cfg",
    [
        MQARConfig(vocab_size=64, seq_len=64, num_pairs=8),
        MQARConfig(vocab_size=64, seq_len=64, num_pairs=8, power_a=None),
        MQARConfig(vocab_size=8, seq_len=12, num_pairs=3, power_a=0.5),  # keys 1..3: all used
        MQARConfig(vocab_size=10, seq_len=13, num_pairs=3, power_a=None),  # odd query region
    ],
    ids=["power", "uniform", "tight", "odd"],
)
def test_every_example_has_the_mqar_structure(cfg):
    x, y = mqar_batch(cfg, 64, generator=torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (64, cfg.seq_len)
    assert x.dtype == y.dtype == torch.int64
    for i in range(64):
        _check_example(cfg, x[i], y[i])


def test_a_query_can_end_the_sequence():
    # Odd query region: the last slot is one position, so its value exists only in the targets.
    cfg = MQARConfig(vocab_size=10, seq_len=9, num_pairs=2, power_a=None)
    x, y = mqar_batch(cfg, 64, generator=torch.Generator().manual_seed(0))
    last = y[:, -1] != -100
    assert 0 < int(last.sum()) < 64  # 2 of 3 slots are drawn: about 2/3 of the rows
    keys, values = x[:, 0:4:2], x[:, 1:4:2]
    is_last = keys == x[:, -1:]  # which context pair the final token queries, if any
    assert torch.equal(is_last.any(1), last)
    assert torch.equal(values[is_last], y[last, -1])


def test_query_order_is_independent_of_context_order():
    # Draws without replacement come out heavy-first; without a shuffle the first context pairs
    # would be queried early (mean rank about 3.06 for pair 0, 3.89 for pair 7).
    cfg = MQARConfig(vocab_size=64, seq_len=256, num_pairs=8)
    x, y = mqar_dataset(cfg, 2000, seed=0)
    keys = x[:, 0 : cfg.query_region_start() : 2]
    queried = torch.stack([x[i][y[i] != -100] for i in range(len(x))])  # keys in query order
    rank = (queried.unsqueeze(1) == keys.unsqueeze(2)).int().argmax(2)  # when pair k is queried
    mean_rank = rank.double().mean(0)
    # Uniform over 0..7: mean 3.5, standard error 2.29 / sqrt(2000) = 0.05.
    assert (mean_rank - 3.5).abs().max().item() < 0.25


def test_same_seed_same_data_different_seed_different_data():
    cfg = MQARConfig(vocab_size=128, seq_len=64, num_pairs=8)
    a, b, c = (
        mqar_dataset(cfg, 16, seed=1),
        mqar_dataset(cfg, 16, seed=1),
        mqar_dataset(cfg, 16, seed=2),
    )
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(mqar_batch(cfg, 16, generator=gen)[0], a[0])
    assert not torch.equal(mqar_batch(cfg, 16, generator=gen)[0], a[0])  # the state advanced


def _mean_query_slot(power_a: float | None) -> float:
    cfg = MQARConfig(seq_len=256, num_pairs=16, power_a=power_a)
    _, y = mqar_dataset(cfg, 1000, seed=0)
    pos = (y != -100).nonzero()[:, 1].double()
    return ((pos - cfg.query_region_start()) / 2).mean().item()


def test_power_law_favours_early_queries():
    # 112 slots, 16 queries each over 1000 sequences: standard error of each mean is about 0.25.
    uniform, power, late = _mean_query_slot(None), _mean_query_slot(0.01), _mean_query_slot(2.0)
    assert abs(uniform - 55.5) < 3  # (112 - 1) / 2
    assert power < uniform - 15  # measured about 28 vs 55.5
    assert late > uniform + 8  # a > 1 favours late slots (measured about 73)
    assert _mean_query_slot(1.0) == uniform  # a = 1 is exactly the uniform weights


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"vocab_size": 3}, "mqar.vocab_size"),
        ({"vocab_size": 64.0}, "mqar.vocab_size"),
        ({"num_pairs": 0}, "mqar.num_pairs"),
        ({"vocab_size": 16, "num_pairs": 8, "seq_len": 64}, "mqar.num_pairs"),  # keys 1..7 only
        ({"seq_len": 63, "num_pairs": 16}, "mqar.seq_len"),
        ({"seq_len": "256"}, "mqar.seq_len"),
        ({"power_a": 0.0}, "mqar.power_a"),
        ({"power_a": -1.0}, "mqar.power_a"),
        ({"power_a": float("nan")}, "mqar.power_a"),
        ({"power_a": True}, "mqar.power_a"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as exc:
        MQARConfig(**kwargs)
    assert exc.value.field == field
    assert "\n" not in str(exc.value) and str(exc.value).startswith(f"{field}: got ")


def test_boundary_configs_are_valid():
    MQARConfig(vocab_size=4, seq_len=4, num_pairs=1)
    MQARConfig(vocab_size=16, seq_len=28, num_pairs=7, power_a=None)
    assert MQARConfig(num_pairs=5).query_region_start() == 10


def test_batch_size_errors():
    cfg = MQARConfig(vocab_size=16, seq_len=16, num_pairs=2)
    with pytest.raises(ConfigError) as exc:
        mqar_batch(cfg, 0, generator=torch.Generator())
    assert exc.value.field == "mqar.batch"
    with pytest.raises(ConfigError) as exc:
        mqar_dataset(cfg, -1, seed=0)
    assert exc.value.field == "mqar.n"
