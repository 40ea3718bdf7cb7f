"""``decode_ms`` as a searchable metric: a registry entry and a profiler measurement, nothing else.

A tiny space names it as an objective and a constraint; the study (real SQLite, real training on
a tiny budget) records a positive per-token decode latency for every model that decodes token by
token, and marks a model that cannot (Mahmood & Huang V1) *invalid* with the reason, without
building or profiling it."""

from __future__ import annotations

import optuna
import pytest

from archsearch.profiling.profiles import Profile
from archsearch.search.loop import Search
from archsearch.search.results import FINISHED
from archsearch.search.space import parse_space
from archsearch.search.storage import open_storage, storage_url
from archsearch.search.study import open_study, settings_from

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = """\
version: 1
name: tinydecode
seq_len: 32
fixed: {vocab_size: 256, max_seq_len: 32}
params:
  d_model: {choices: [16, 32]}
  n_layers: {low: 1, high: 2}
family:
  decoder: {}
  v1_double: {n_latents: 8}
layers:
  mix: uniform
  mixer:
    softmax: {n_heads: 2}
objectives:
  - {metric: bits_per_byte, direction: minimize}
  - {metric: decode_ms, direction: minimize}
constraints:
  - {metric: decode_ms, max: 10000}
task: {name: lm, options: {eval_tokens: 512, eval_stride: 8}}
train: {budget_tokens: 2048, batch_size: 4, evals: 1, halving: {rungs: 1}}
"""


def test_decode_ms_objective_and_constraint_end_to_end(tmp_path):
    space = parse_space(SPACE, source=str(tmp_path / "tinydecode.yaml"))
    settings = settings_from(space, profile=Profile(warmup=1, repeats=3, threads=1))
    storage = open_storage(storage_url(tmp_path / "study.db"))
    study = open_study(settings, storage, "tinydecode", sampler="random", seed=0, n_trials=6)
    summary = Search(study, settings).run(6)
    assert summary.finished == 6 and not summary.interrupted

    trials = optuna.load_study(study_name="tinydecode", storage=storage).get_trials()
    assert {t.user_attrs["outcome"] for t in trials} <= FINISHED
    fresh = [t for t in trials if t.user_attrs.get("duplicate_of") is None]
    decoders = [t for t in fresh if t.params.get("family", "decoder") == "decoder"]
    v1 = [t for t in fresh if t.params.get("family") == "v1_double"]
    assert decoders and v1, "the seeded random sampler draws both families in 6 trials"
    for t in decoders:
        assert t.user_attrs["outcome"] == "complete", t.user_attrs["reason"]
        m = t.user_attrs["metrics"]
        assert m["decode_ms"] > 0 and t.values[1] == m["decode_ms"]
        assert t.constraints["decode_ms"] == pytest.approx(m["decode_ms"] / 10000 - 1)
        assert t.constraints["decode_ms"] < 0
        assert {"params", "flops_fwd", "decode_state_bytes"} <= set(m)
        assert "latency_ms" not in m  # only the sources a space names are measured
    for t in v1:
        # cannot decode token by token: invalid (PRUNED, valid = 1), never built nor profiled
        assert t.user_attrs["outcome"] == "invalid" and t.state.name == "PRUNED"
        assert t.constraints["valid"] == 1.0 and "metrics" not in t.user_attrs
        reason = t.user_attrs["reason"]
        assert reason.startswith("decode_ms: got 'family v1_double'"), reason
        assert "decodes token by token" in reason
