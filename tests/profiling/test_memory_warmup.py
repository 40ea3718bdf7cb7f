"""The memory estimate's one measured step with the optimizer state made up front gives the bytes
of the two-step procedure (a warm-up step makes the state, the second step is measured)."""

import pytest
import torch
from torch import nn

from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.profiling.memory import (
    build_in_dtype,
    estimate_module_memory,
    init_optimizer_state,
    make_optimizer,
)
from archsearch.testing.families import family_cases
from archsearch.testing.mixers import conformance_cases


def _builder(cfg: ModelConfig, T: int, batch: int = 2, dtype: torch.dtype = torch.float32):
    def build():
        return build_in_dtype(cfg, dtype), torch.randint(0, cfg.vocab_size, (batch, T))

    return build


def _same(build, **kw) -> None:
    fast = estimate_module_memory(build, warmup=False, **kw)
    slow = estimate_module_memory(build, warmup=True, **kw)
    assert fast == slow


@pytest.mark.parametrize("case", family_cases(), ids=lambda c: c.id)
def test_every_family_example_gives_the_two_step_bytes(case):
    _same(_builder(case.cfg, case.seq_len), optimizer="adamw", device="cuda")


def _mixer_cfg(case) -> tuple[ModelConfig, int] | None:
    block = BlockConfig(mixer=case.cfg)
    cfg = ModelConfig(
        d_model=32,
        vocab_size=64,
        max_seq_len=256,
        pos_encoding="rope" if case.rope else "none",
        layers=(block, block),
    )
    for T in (24, 30, 32, 40, 48, 60, 64, 120):
        try:
            cfg.check_seq_len(T)
            return cfg, T
        except ValueError:
            continue
    return None


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda c: c.id)
def test_every_mixer_example_gives_the_two_step_bytes(case):
    got = _mixer_cfg(case)
    assert got is not None, case.id
    cfg, T = got
    _same(_builder(cfg, T), optimizer="adamw", device="cpu")


@pytest.mark.parametrize("optimizer, device", [("sgd", "cuda"), ("sgd", "cpu"), ("adamw", "cpu")])
def test_optimizers_and_devices_give_the_two_step_bytes(optimizer, device):
    case = family_cases()[0]
    _same(_builder(case.cfg, case.seq_len), optimizer=optimizer, device=device)


def test_bf16_gives_the_two_step_bytes():
    case = family_cases()[0]
    _same(_builder(case.cfg, case.seq_len, dtype=torch.bfloat16), optimizer="adamw", device="cuda")


class _Unused(nn.Module):
    """A parameter the loss never touches: AdamW makes no state for it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3, bias=False)
        self.unused = nn.Parameter(torch.zeros(100))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.fc(x).sum()


def test_a_parameter_without_gradient_falls_back_to_the_warm_up_step():
    def build():
        return _Unused(), torch.randn(4, 3)

    _same(build, optimizer="adamw", device="cpu")
    # the up-front state would have counted the unused parameter's two moments (800 bytes)
    peaks = estimate_module_memory(build, optimizer="adamw", device="cpu")
    sgd = estimate_module_memory(build, optimizer="sgd", device="cpu")
    assert peaks.training_peak_bytes - sgd.training_peak_bytes < 800


def test_init_optimizer_state_only_for_what_it_knows():
    p = nn.Parameter(torch.zeros(3))
    assert init_optimizer_state(make_optimizer("adamw", [p], foreach=False))
    assert not init_optimizer_state(torch.optim.AdamW([p], amsgrad=True))
    assert not init_optimizer_state(torch.optim.Adam([p]))
    assert not init_optimizer_state(torch.optim.SGD([p], lr=0.1, momentum=0.9))
    opt = make_optimizer("adamw", [p], foreach=True)
    init_optimizer_state(opt)
    # what torch's own first step leaves behind: the same keys, shapes and dtypes
    ref = make_optimizer("adamw", [q := nn.Parameter(torch.zeros(3))], foreach=True)
    q.grad = torch.zeros(3)
    ref.step()
    mine, theirs = opt.state[p], ref.state[q]
    assert mine.keys() == theirs.keys()
    for k in mine:
        assert (mine[k].shape, mine[k].dtype, mine[k].device) == (
            theirs[k].shape,
            theirs[k].dtype,
            theirs[k].device,
        )
