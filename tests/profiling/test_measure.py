"""measure_metrics: the registry's profiled metrics of one model, each source only when asked,
measured by the profiler's own functions; and measure_latency timing only the parts asked for."""

from __future__ import annotations

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.metrics import all_metrics
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model, count_params
from archsearch.profiling.measure import check_measurable, measure_metrics
from archsearch.profiling.profiles import Profile
from archsearch.profiling.timing import measure_latency
from archsearch.testing.families import family_cases

PROF = Profile(warmup=1, repeats=3, threads=1)
COST = [n for n, m in all_metrics("profiled").items() if m.source == "cost"]


def _decoder():  # type: ignore[no-untyped-def]
    case = family_cases("decoder")[0]
    return case.cfg, case.seq_len


def test_cost_only_unless_asked_and_exact():
    cfg, T = _decoder()
    got = measure_metrics(cfg, T, PROF, ["bits_per_byte", "flops_fwd"])
    assert list(got) == COST  # quality names and cost names: the free analytic ones only
    cost = model_cost(cfg, T)
    assert got["params"] == count_params(cfg)["total"]
    assert got["flops_fwd"] == cost.forward_exact and got["flops_train"] == cost.training_exact
    assert got["decode_state_bytes"] == cost.decode_state * 4  # float32
    assert measure_metrics(cfg, T, PROF, [], cost=cost) == got


def test_each_source_when_named():
    cfg, T = _decoder()
    threads = torch.get_num_threads()
    got = measure_metrics(cfg, T, PROF, ["decode_ms", "latency_ms", "peak_memory_gib"])
    assert list(got) == [*COST, "peak_memory_gib", "latency_ms", "decode_ms"]  # registry order
    assert got["decode_ms"] > 0 and got["latency_ms"] > 0 and 0 < got["peak_memory_gib"] < 1
    assert torch.get_num_threads() == threads  # the profile's threads, restored
    only_decode = measure_metrics(cfg, T, PROF, ["decode_ms"])
    assert set(only_decode) == {*COST, "decode_ms"}


def test_decode_ms_of_a_model_that_cannot_decode_is_a_one_line_error():
    case = family_cases("v1_double")[0]
    with pytest.raises(ConfigError, match=r"^decode_ms: got 'family v1_double'.*token by token"):
        check_measurable(case.cfg, ["decode_ms"])
    with pytest.raises(ConfigError, match="decode_ms"):
        measure_metrics(case.cfg, case.seq_len, PROF, ["flops_fwd", "decode_ms"])
    check_measurable(case.cfg, ["latency_ms", "bits_per_byte"])  # the rest is fine
    assert measure_metrics(case.cfg, case.seq_len, PROF, ["latency_ms"])["latency_ms"] > 0


def test_measure_latency_times_only_the_parts_asked_for():
    cfg, T = _decoder()
    kw = {"batch": 1, "device": "cpu", "dtype": torch.float32, "warmup": 0, "repeats": 2}
    res = measure_latency(build_model(cfg), T, parts={"decode"}, **kw)
    assert res.forward is None and res.train_step is None
    assert res.decode_per_token is not None and res.decode_per_token.median_ms > 0
    res = measure_latency(build_model(cfg), T, parts=("forward",), **kw)
    assert res.forward is not None and res.train_step is None and res.decode_per_token is None
    with pytest.raises(ValueError, match="backward"):
        measure_latency(build_model(cfg), T, parts={"backward"}, **kw)
