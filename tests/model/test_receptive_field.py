"""The receptive field computed from the structure equals the gradient support of the last
position, for every mixer example config (in 2- and 3-layer decoders) and every family example;
HSM's full-coverage schedule reaches every offset, the cycle schedule leaves holes."""

from __future__ import annotations

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.mixers import get_mixer, list_mixers, mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.families import get_family, list_families
from archsearch.model.transformer import build_model, receptive_field


def _support(cfg: ModelConfig, T: int) -> torch.Tensor:
    """Window positions whose embedding moves the last hidden row (float64, random init)."""
    torch.manual_seed(0)
    model = build_model(cfg).double().eval()
    idx = torch.randint(0, cfg.vocab_size, (1, T))
    x = model.embed(idx).detach().requires_grad_(True)
    model.hidden(x)[:, -1].sum().backward()
    assert x.grad is not None
    return x.grad[0].abs().sum(-1) > 0


def _structural(cfg: ModelConfig, T: int) -> torch.Tensor:
    cls = get_family(cfg.family.kind)
    rows = torch.zeros(cls.n_rows(cfg, T), dtype=torch.bool)
    rows[-1] = True
    return cls.reads(cfg, T, rows)


def _check(cfg: ModelConfig, T: int) -> int:
    got, want = _structural(cfg, T), _support(cfg, T)
    assert torch.equal(got, want), (cfg, got.nonzero().flatten(), want.nonzero().flatten())
    assert receptive_field(cfg, T) == int(want.sum())
    return int(want.sum())


def _mixer_cases() -> list[tuple[str, object, int]]:
    return [
        (k, c, n) for k in list_mixers() for c in get_mixer(k).example_configs(16) for n in (2, 3)
    ]


@pytest.mark.parametrize(("kind", "mixer", "n_layers"), _mixer_cases())
def test_mixer_stacks_match_gradient_support(kind: str, mixer: object, n_layers: int) -> None:
    cfg = ModelConfig(
        d_model=16,
        vocab_size=32,
        max_seq_len=48,
        pos_encoding="none",
        layers=(BlockConfig(mixer=mixer, mlp_ratio=1.0),) * n_layers,  # type: ignore[arg-type]
    )
    for T in (48, 40, 36, 30):
        try:
            cfg.check_seq_len(T)
        except ConfigError:
            continue
        _check(cfg, T)
        return
    pytest.skip(f"{mixer} takes none of the test lengths")


@pytest.mark.parametrize("family", list_families())
def test_family_examples_match_gradient_support(family: str) -> None:
    for cfg, T in get_family(family).example_configs():
        _check(cfg, T)


def _hsm(n_hsm: int, T: int, **params: object) -> ModelConfig:
    return ModelConfig(
        d_model=16,
        vocab_size=32,
        max_seq_len=T,
        pos_encoding="none",
        layers=(BlockConfig(mixer=mixer_config("hsm", **params), mlp_ratio=1.0),) * n_hsm,
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("params", [{}, {"schedule": "descending", "base": 3}])
def test_hsm_full_coverage_sees_the_whole_window_at_any_depth(n: int, params: dict) -> None:
    assert _check(_hsm(n, 40, **params), 40) == 40


def test_hsm_cycle_schedule_has_holes_and_says_so() -> None:
    # 2 layers at max_seq_len 40: shifts 1 and 2 only, so t−3 is the farthest
    cfg = _hsm(2, 40, coverage="cycle")
    assert _check(cfg, 40) == 4
    rf = _structural(cfg, 40).nonzero().flatten().tolist()
    assert rf == [36, 37, 38, 39]
    # descending at 6 layers of 1024: shifts 512 … 16, so t−1 is never read
    big = _hsm(6, 1024, coverage="cycle", schedule="descending")
    assert not _structural(big, 1024)[1022]
    assert receptive_field(big, 1024) == 64
    assert receptive_field(big.replace(layers=big.layers[:6]), 1024) == 64
    assert receptive_field(_hsm(6, 1024), 1024) == 1024


@pytest.mark.parametrize(
    ("mixer", "n", "T", "want"),
    [
        ({"kind": "softmax", "n_heads": 2}, 2, 4096, 4096),
        ({"kind": "sliding_window", "n_heads": 2, "window": 256}, 4, 4096, 4 * 255 + 1),
        ({"kind": "ecp", "n_heads": 2, "segment_len": 256}, 4, 4096, 4096 - 256 * (15 - 4)),
        ({"kind": "ecp", "n_heads": 2, "segment_len": 256}, 15, 4096, 4096),
    ],
)
def test_closed_forms(mixer: dict, n: int, T: int, want: int) -> None:
    m = dict(mixer)
    cfg = ModelConfig(
        d_model=16, max_seq_len=T, layers=(BlockConfig(mixer=mixer_config(m.pop("kind"), **m)),) * n
    )
    assert receptive_field(cfg, T) == want


def test_a_million_tokens_is_cheap() -> None:
    cfg = _hsm(3, 2**20)
    assert receptive_field(cfg, 2**20) == 2**20
