"""Adaptive repetition of a latency measurement, driven by a fake clock (exact, no real timing):
more rounds while the estimate moves, a stop at the threshold, the time cap or the round cap,
and the unstable flag on what is left over."""

from __future__ import annotations

import pytest
import torch

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.transformer import build_model
from archsearch.profiling import timing
from archsearch.profiling.measure import time_model
from archsearch.profiling.profiles import Profile
from archsearch.profiling.timing import MAX_ROUNDS, estimate_cv, time_fn, timing_stats


class FakeClock:
    """Each call of ``fn`` lasts the next of ``durations_ms``; the clock reads seconds."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.now = 0.0
        self.durations = list(durations_ms)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def fn(self) -> None:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)] / 1e3
        self.calls += 1


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch):
    def make(durations_ms: list[float]) -> FakeClock:
        c = FakeClock(durations_ms)
        monkeypatch.setattr(timing, "_clock", c)
        return c

    return make


def test_estimate_cv_compares_the_medians_of_the_two_halves():
    assert estimate_cv([1.0]) is None
    assert estimate_cv([10.0, 30.0]) == pytest.approx(0.5)  # medians 10 and 30: std 10, mean 20
    # odd count: the middle sample is in neither half
    assert estimate_cv([10.0, 10.0, 99.0, 10.0, 10.0]) == 0.0
    t = timing_stats([10.0, 10.0, 30.0, 30.0])
    assert t.estimate_cv == pytest.approx(0.5) and t.unstable
    assert not timing_stats([10.0, 10.5, 10.0, 10.5]).unstable


def test_a_stable_measurement_takes_one_round(clock):
    c = clock([10.0])
    t = time_fn(c.fn, device="cpu", warmup=2, repeats=4, threshold=0.1, max_time_s=60)
    assert c.calls == 2 + 4 and t.repeats == 4
    assert t.estimate_cv == pytest.approx(0, abs=1e-9) and not t.unstable
    assert t.samples_ms == pytest.approx([10.0] * 4)


def test_a_slow_start_gets_more_rounds_until_the_estimate_settles(clock):
    # warm-up, then a first round whose second half is slow (contention), then steady calls
    c = clock([5.0, 10.0, 10.0, 30.0, 30.0] + [10.0] * 100)
    t = time_fn(c.fn, device="cpu", warmup=1, repeats=4, threshold=0.1, max_time_s=60)
    # round 1: halves 10 | 30 (CV 0.5); round 2: 20 | 10 (CV 0.33); round 3: 10 | 10
    assert t.repeats == 12 and c.calls == 1 + 12
    assert t.estimate_cv == pytest.approx(0, abs=1e-9) and not t.unstable
    assert t.median_ms == pytest.approx(10.0)
    # without a threshold: exactly `repeats` calls, as asked, and the spread is flagged
    c = clock([5.0, 10.0, 10.0, 30.0, 30.0] + [10.0] * 100)
    t = time_fn(c.fn, device="cpu", warmup=1, repeats=4)
    assert t.repeats == 4 and t.unstable and t.estimate_cv == pytest.approx(0.5)


def test_noise_that_never_settles_stops_at_the_caps_and_is_flagged(clock):
    drift = [10.0 + 5 * i for i in range(1000)]  # every call slower than the last (throttling)
    c = clock(drift)
    t = time_fn(c.fn, device="cpu", warmup=0, repeats=4, threshold=0.1, max_time_s=1e9)
    assert t.repeats == 4 * MAX_ROUNDS and t.unstable and t.estimate_cv > 0.1
    # the time cap: the first round takes 70 ms, the second 150 ms; a budget of 0.1 s stops
    # after the round that spends it
    c = clock(drift)
    t = time_fn(c.fn, device="cpu", warmup=0, repeats=4, threshold=0.1, max_time_s=0.1)
    assert t.repeats == 8 and t.unstable


def test_reset_runs_before_every_round_and_the_warmup_after_it(clock):
    c = clock([10.0, 10.0, 30.0, 30.0] + [10.0] * 100)
    events: list[str] = []

    def fn() -> None:
        events.append("call")
        c.fn()

    t = time_fn(
        fn,
        device="cpu",
        warmup=1,
        repeats=4,
        threshold=0.1,
        max_time_s=60,
        reset=lambda: events.append("reset"),
    )
    assert events[:6] == ["reset", "call", "call", "call", "call", "call"]
    assert events.count("reset") == t.repeats // 4 and events.count("call") == t.repeats + 1 * (
        t.repeats // 4
    )


def test_time_model_records_the_spread_and_repeats_decoding_from_a_fresh_state():
    block = BlockConfig(mixer=mixer_config("softmax", n_heads=2))
    cfg = ModelConfig(d_model=32, vocab_size=64, max_seq_len=64, layers=(block, block))
    prof = Profile(warmup=1, repeats=3, threads=1, time_budget_s=5.0)
    res = time_model(cfg, 32, prof)
    for t in (res.forward, res.train_step, res.decode_per_token):
        assert t is not None and t.estimate_cv is not None
        assert t.repeats % 3 == 0 and 3 <= t.repeats <= 3 * MAX_ROUNDS
        assert t.unstable == (t.estimate_cv > timing.UNSTABLE_CV)
    # a decode round needs a fresh state at the same position: it does not run past the window
    model = build_model(cfg)
    res = timing.measure_latency(
        model,
        8,
        batch=1,
        device="cpu",
        dtype=torch.float32,
        warmup=1,
        repeats=3,
        threads=1,
        threshold=0.0,  # never stable: every round is taken
        max_time_s=60,
        parts=("decode",),
    )
    assert res.decode_per_token.repeats == 3 * MAX_ROUNDS


@pytest.mark.gpu
def test_cuda_rounds_keep_event_timing():
    block = BlockConfig(mixer=mixer_config("softmax", n_heads=2))
    cfg = ModelConfig(d_model=32, vocab_size=64, max_seq_len=256, layers=(block, block))
    res = timing.measure_latency(
        build_model(cfg),
        256,
        batch=2,
        device="cuda",
        dtype=torch.bfloat16,
        warmup=2,
        repeats=3,
        threshold=0.0,  # every round is taken, each read from CUDA events
        max_time_s=60,
    )
    for t in (res.forward, res.train_step, res.decode_per_token):
        assert t.repeats == 3 * MAX_ROUNDS and all(s > 0 for s in t.samples_ms)
