"""A sweep's points computed in forked worker processes are those of the serial sweep."""

from typing import Any

import pytest

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.profiling.profiles import Profile
from archsearch.profiling.runner import Sweep, Variant, can_run_in_parallel


def _variant(name: str, kind: str, **mixer: Any) -> Variant:
    block = BlockConfig(mixer=mixer_config(kind, **mixer))
    cfg = ModelConfig(d_model=32, vocab_size=64, max_seq_len=256, layers=(block, block))
    return Variant(name, cfg)


VARIANTS = [
    _variant("softmax", "softmax", n_heads=2),
    _variant("hsm", "hsm"),
    _variant("ecp", "ecp", n_heads=2, segment_len=32),  # 48 is not a multiple: skipped
]
LENGTHS = [32, 48, 64]


def _timeless(x: Any) -> Any:
    """Details without the seconds each counter took."""
    if isinstance(x, dict):
        return {k: _timeless(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_timeless(v) for v in x]
    return x


def _run(workers: int) -> tuple[int, list[Any]]:
    prof = Profile(name="t", device="cpu")
    with Sweep(VARIANTS, LENGTHS, prof, {"flops", "memory"}, fvcore=False, workers=workers) as s:
        return s.workers, list(s.points())


@pytest.mark.skipif(
    not can_run_in_parallel(Profile(name="t", device="cpu"), {"flops"}), reason="no fork here"
)
def test_parallel_points_are_the_serial_ones():
    used, parallel = _run(2)
    none, serial = _run(1)
    assert (used, none) == (2, 0)
    assert [(p.variant, p.seq_len) for p in parallel] == [
        (v.name, T) for v in VARIANTS for T in LENGTHS
    ]
    for a, b in zip(parallel, serial, strict=True):
        assert (a.variant, a.seq_len, a.status) == (b.variant, b.seq_len, b.status)
        assert a.row == b.row
        assert _timeless(a.details) == _timeless(b.details)
        assert (a.warnings, a.uncounted) == (b.warnings, b.uncounted)
        assert (a.error is None) == (b.error is None)
        if a.error is not None:  # an invalid length keeps its ConfigError
            assert str(a.error) == str(b.error)
    assert sum(p.status == "invalid" for p in parallel) == 1


def test_timed_or_device_sweeps_stay_serial():
    cpu = Profile(name="t", device="cpu")
    assert not can_run_in_parallel(cpu, {"flops", "latency"})
    assert not can_run_in_parallel(Profile(name="t", device="cuda"), {"memory"})
    with Sweep(VARIANTS, LENGTHS, cpu, {"latency"}, workers=2) as s:
        assert s.workers == 0
