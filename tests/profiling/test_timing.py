"""Latency measurement: exact statistics, the timing loop, and measure_latency on tiny models.

No assertion compares two timings or bounds one from above: timings on a shared CPU are noise.
"""

import json
import math
import time

import pytest
import torch

from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.transformer import build_model
from archsearch.profiling.timing import (
    _signature,
    _stepped_state,
    decode_state_at,
    measure_latency,
    time_fn,
    timing_stats,
)
from archsearch.testing.families import family_cases


def _lm(kind="softmax", d=32, max_seq_len=256, **mixer) -> ModelConfig:
    if kind != "hsm":
        mixer.setdefault("n_heads", 2)
    block = BlockConfig(mixer=mixer_config(kind, **mixer))
    return ModelConfig(d_model=d, vocab_size=64, max_seq_len=max_seq_len, layers=(block, block))


# ---- statistics and the timing loop ---------------------------------------------------------


def test_stats_of_a_known_list():
    t = timing_stats([5.0, 1.0, 3.0, 2.0, 4.0], warmup=2)
    assert (t.median_ms, t.min_ms, t.mean_ms) == (3.0, 1.0, 3.0)
    assert t.iqr_ms == 4.0 - 2.0  # q75 = 4, q25 = 2
    assert t.cv == pytest.approx(math.sqrt(2.0) / 3.0)  # population std sqrt(2)
    assert (t.warmup, t.repeats) == (2, 5)
    assert t.samples_ms == [5.0, 1.0, 3.0, 2.0, 4.0]  # in the order taken
    # even length: linear interpolation between order statistics (numpy's default)
    t = timing_stats([4.0, 1.0, 3.0, 2.0])
    assert t.median_ms == 2.5
    assert t.iqr_ms == pytest.approx(3.25 - 1.75)
    one = timing_stats([7.0])
    assert (one.median_ms, one.iqr_ms, one.cv) == (7.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        timing_stats([])


def test_time_fn_warms_up_then_times_each_call():
    sleeps_ms = [0, 0, 20, 1, 10]  # two warm-up calls, then three timed ones
    calls = []

    def fn():
        time.sleep(sleeps_ms[len(calls)] / 1e3)
        calls.append(1)

    t = time_fn(fn, device="cpu", warmup=2, repeats=3)
    assert len(calls) == 5
    assert (t.warmup, t.repeats, len(t.samples_ms)) == (2, 3, 3)
    # a sleep lasts at least as long as asked: every sample is at least its own sleep
    for sample, slept in zip(t.samples_ms, sleeps_ms[2:], strict=True):
        assert sample >= slept
    assert t.median_ms == sorted(t.samples_ms)[1]
    with pytest.raises(ValueError):
        time_fn(fn, device="cpu", warmup=0, repeats=0)


# ---- measure_latency ---------------------------------------------------------------------------


def _positive(t) -> None:
    assert t is not None
    assert t.repeats == 3 and len(t.samples_ms) == 3
    assert all(s > 0 for s in t.samples_ms) and t.median_ms > 0 and t.iqr_ms >= 0


def test_tiny_decoder_gives_forward_train_and_decode():
    model = build_model(_lm())
    threads = torch.get_num_threads()
    res = measure_latency(
        model, 64, batch=2, device="cpu", dtype=torch.float32, warmup=1, repeats=3, threads=1
    )
    for t in (res.forward, res.train_step, res.decode_per_token):
        _positive(t)
    assert (res.threads, res.device, res.dtype, res.compiled) == (1, "cpu", "float32", False)
    assert (res.decode_context, res.decode_fill) == (64, "stepped")
    assert torch.get_num_threads() == threads  # restored
    assert model.training  # the mode it came in with
    json.dumps(res.to_dict())


def test_no_decode_timing_for_a_v1_model_or_when_not_asked():
    v1 = next(c for c in family_cases("v1_double"))
    res = measure_latency(
        v1.build(torch.float32),
        v1.seq_len,
        batch=1,
        device="cpu",
        dtype=torch.float32,
        warmup=1,
        repeats=3,
        threads=1,
    )
    _positive(res.forward)
    _positive(res.train_step)
    assert res.decode_per_token is None and res.decode_fill is None
    res = measure_latency(
        build_model(_lm()),
        32,
        batch=1,
        device="cpu",
        dtype=torch.float32,
        warmup=0,
        repeats=3,
        decode=False,
        threads=1,
    )
    assert res.decode_per_token is None


def test_perceiver_ar_decodes_at_its_limit():
    case = next(c for c in family_cases("perceiver_ar"))
    model = case.build(torch.float32)
    res = measure_latency(
        model,
        case.seq_len,
        batch=1,
        device="cpu",
        dtype=torch.float64,
        warmup=1,
        repeats=3,
        threads=1,
    )
    assert res.decode_context == model.decode_limit() < case.seq_len
    assert res.dtype == "float64" and next(model.parameters()).dtype == torch.float64
    _positive(res.decode_per_token)


# ---- the decode state at long contexts -----------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        _lm(),
        _lm("ecp", segment_len=8, kv_shared=False),
        _lm("hsm"),
        _lm("hsm", mixing="pair_softmax", shift_groups=2, pad="learned"),
    ],
    ids=["softmax", "ecp", "hsm-ab", "hsm-pair-softmax"],
)
def test_synthetic_state_has_the_shapes_and_counters_of_a_real_one(cfg):
    model = build_model(cfg).eval()
    n = 300
    with torch.no_grad():
        state, fill = decode_state_at(
            model, n, 2, torch.float32, torch.device("cpu"), check_len=304
        )
        real = _stepped_state(model, n, 2, torch.float32, torch.device("cpu"))
        assert fill == "synthetic"
        assert _signature(state) == _signature(real)
        # and decoding goes on from it like from the real one
        tok = torch.zeros(2, 1, dtype=torch.long)
        (y, after), (y_real, after_real) = model.step(tok, state), model.step(tok, real)
        assert y.shape == y_real.shape and _signature(after) == _signature(after_real)


def test_state_is_stepped_when_the_analytic_check_disagrees():
    # an HSM layer with shift 512 holds a 512-slot ring from the start; after 300 tokens the
    # analytic state counts 300 of them, so the synthetic state is refused (conservatively)
    cfg = _lm("hsm", max_seq_len=1024, schedule="descending", levels=10)
    model = build_model(cfg).eval()
    with torch.no_grad():
        state, fill = decode_state_at(model, 300, 1, torch.float32, torch.device("cpu"))
        real = _stepped_state(model, 300, 1, torch.float32, torch.device("cpu"))
    assert fill == "stepped"
    assert _signature(state) == _signature(real)


class _BlockCounterModel:
    """A decoder stand-in whose state holds the analytic number of values (softmax KV cache) but
    also a block counter ``t // 4``, which is not linear in t: it cannot be extrapolated."""

    def __init__(self) -> None:
        self.cfg = _lm()
        self.width = 2 * self.cfg.d_model * self.cfg.n_layers  # K and V, every layer

    def decode_limit(self) -> None:
        return None

    def init_state(self, batch, dtype, device):
        return {"t": 0, "block": 0, "kv": torch.zeros(batch, self.width, 0, dtype=dtype)}

    def step(self, idx_B1, state):
        t = state["t"] + 1
        kv = torch.cat([state["kv"], torch.zeros(*state["kv"].shape[:2], 1)], dim=2)
        return torch.zeros(idx_B1.shape[0], 1, 8), {"t": t, "block": t // 4, "kv": kv}


def test_state_is_stepped_when_a_counter_is_not_linear():
    model = _BlockCounterModel()
    state, fill = decode_state_at(model, 300, 1, torch.float32, torch.device("cpu"))
    assert fill == "stepped"
    assert state["block"] == 75


def test_long_context_decode_uses_the_synthetic_state():
    res = measure_latency(
        build_model(_lm(max_seq_len=4096)),
        2048,
        batch=1,
        device="cpu",
        dtype=torch.float32,
        warmup=1,
        repeats=3,
        threads=1,
    )
    assert (res.decode_context, res.decode_fill) == (2048, "synthetic")
    _positive(res.decode_per_token)


# ---- compiled and GPU ----------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_on_cpu():
    res = measure_latency(
        build_model(_lm()),
        64,
        batch=1,
        device="cpu",
        dtype=torch.float32,
        warmup=2,
        repeats=3,
        compile=True,
    )
    assert res.compiled
    _positive(res.forward)
    _positive(res.train_step)


@pytest.mark.gpu
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_cuda_timings(compile):
    res = measure_latency(
        build_model(_lm()),
        256,
        batch=2,
        device="cuda",
        dtype=torch.bfloat16,
        warmup=3,
        repeats=3,
        compile=compile,
    )
    assert res.device.startswith("cuda") and res.compiled == compile
    for t in (res.forward, res.train_step, res.decode_per_token):
        _positive(t)
