"""Search-space files: the schema, the pure sampler, the shipped spaces, and bad input."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.errors import ConfigError
from archsearch.search.space import (
    SPACES_DIR,
    build_config,
    check_buildable,
    load_space,
    parse_space,
    sample,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SHIPPED = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))

BASE = """\
version: 1
seq_len: 64
fixed: {vocab_size: 256, max_seq_len: 64}
params:
  d_model: {choices: [32, 64]}
  n_layers: {low: 2, high: 5}
layers:
  mix: uniform
  mixer:
    softmax: {n_heads: {choices: [2, 4]}}
    ecp: {n_heads: 2, segment_len: {choices: [16, 32]}}
objectives:
  - {metric: bits_per_byte, direction: minimize}
  - {metric: flops_fwd, direction: minimize}
"""


def _trials(space, n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    study = optuna.create_study(
        directions=["minimize"] * len(space.objectives),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    for _ in range(n):
        trial = study.ask()
        yield trial
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def test_the_five_spaces_are_shipped() -> None:
    assert SHIPPED == ["all_families", "combiner", "hsm_hybrid", "perceiver_family", "quickstart"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_loads_and_builds(name: str) -> None:
    space = load_space(name)  # a shipped name resolves to search_spaces/NAME.yaml
    assert space.source == str(SPACES_DIR / f"{name}.yaml")
    assert check_buildable(space, tries=32) >= 8
    for trial in _trials(space, 12, seed=1):
        try:
            cfg = build_config(trial, space)
        except ConfigError:
            continue
        assert cfg.vocab_size == 256 and cfg.max_seq_len == space.seq_len
        assert cfg.family.kind in space.families


def test_any_trial_is_rebuilt_exactly_from_its_params() -> None:
    space = parse_space(BASE)
    for trial in _trials(space, 20):
        data = sample(trial, space)
        assert sample(optuna.trial.FixedTrial(trial.params), space) == data


def test_conditional_params_exist_only_when_their_choice_is_made() -> None:
    space = parse_space(BASE)
    kinds = set()
    for trial in _trials(space, 30):
        data = sample(trial, space)
        kind = trial.params["mixer"]
        kinds.add(kind)
        assert data["layers"][0]["mixer"]["kind"] == kind
        assert data["layers"][0]["repeat"] == trial.params["n_layers"]
        assert 2 <= trial.params["n_layers"] <= 5
        if kind == "ecp":
            assert set(trial.params) == {"d_model", "n_layers", "mixer", "mixer.ecp.segment_len"}
            assert data["layers"][0]["mixer"]["n_heads"] == 2  # fixed
        else:
            assert set(trial.params) == {"d_model", "n_layers", "mixer", "mixer.softmax.n_heads"}
    assert kinds == {"softmax", "ecp"}


def test_fraction_of_seq_len_and_family_subspaces() -> None:
    text = BASE.replace(
        "layers:\n",
        "family:\n  decoder: {}\n"
        "  perceiver_ar: {n_latents: {fraction_of_seq_len: {choices: [0.25, 0.5]}}}\nlayers:\n",
    )
    space = parse_space(text)
    seen = set()
    for trial in _trials(space, 30):
        data = sample(trial, space)
        if trial.params["family"] == "perceiver_ar":
            frac = trial.params["family.perceiver_ar.n_latents"]
            assert data["family"] == {"kind": "perceiver_ar", "n_latents": int(frac * 64)}
            seen.add(data["family"]["n_latents"])
        else:
            assert data["family"] == "decoder"
            assert not any(k.startswith("family.") for k in trial.params)
    assert seen == {16, 32}


def test_hybrid_places_the_softmax_layers() -> None:
    text = BASE.replace(
        "  mix: uniform\n  mixer:\n    softmax: {n_heads: {choices: [2, 4]}}\n"
        "    ecp: {n_heads: 2, segment_len: {choices: [16, 32]}}\n",
        "  mix: hybrid\n  softmax_layers: {low: 0, high: 2}\n"
        "  placement: {choices: [first, last]}\n"
        "  mixer:\n    softmax: {n_heads: 2}\n    hsm: {mixing: {choices: [ab, gated]}}\n",
    )
    space = parse_space(text)
    for trial in _trials(space, 25):
        kinds = [b["mixer"]["kind"] for b in sample(trial, space)["layers"]]
        p = trial.params
        n, k = p["n_layers"], p["hybrid.softmax_layers"]
        expect = list(range(k)) if p["hybrid.placement"] == "first" else list(range(n - k, n))
        assert [i for i, kind in enumerate(kinds) if kind == "softmax"] == expect
        assert kinds.count("hsm") == n - k


def test_per_layer_mix_names_each_layer() -> None:
    space = parse_space(BASE.replace("mix: uniform", "mix: per_layer"))
    for trial in _trials(space, 10):
        layers = sample(trial, space)["layers"]
        assert len(layers) == trial.params["n_layers"]
        for i, block in enumerate(layers):
            assert block["mixer"]["kind"] == trial.params[f"layers.{i}.mixer"]


def test_an_invalid_combination_is_a_config_error_before_any_training() -> None:
    # d_model 32 with 4 heads is fine; ECP segment 32 does not divide a 48-token window
    space = parse_space(
        BASE.replace("seq_len: 64", "seq_len: 48").replace("max_seq_len: 64", "max_seq_len: 48")
    )
    trial = optuna.trial.FixedTrial(
        {"d_model": 32, "n_layers": 2, "mixer": "ecp", "mixer.ecp.segment_len": 32}
    )
    with pytest.raises(ConfigError, match="segment_len"):
        build_config(trial, space)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("version: 1", "version: 2"), ":1: version: got 2; allowed: 1"),
        (("seq_len: 64", "seq_len: -1"), ":2: seq_len: got -1"),
        (("params:", "parms: {}\nparams:"), ":4: parms: got {}; allowed: one of version"),
        (
            ("d_model: {choices: [32, 64]}", "d_modle: {choices: [32, 64]}"),
            ":5: params.d_modle: got",
        ),
        (
            ("n_layers: {low: 2, high: 5}", "n_layers: {low: 5, high: 2}"),
            ":6: params.n_layers.low: got 5; allowed: a number <= high (2)",
        ),
        (
            ("n_layers: {low: 2, high: 5}", "n_layers: {choices: []}"),
            ":6: params.n_layers.choices: got []",
        ),
        (
            ("n_layers: {low: 2, high: 5}", "n_layers: {low: 2, hi: 5}"),
            ":6: params.n_layers.hi: got 5; allowed: one of choices",
        ),
        (("softmax: {n_heads", "softmx: {n_heads"), ":10: layers.mixer.softmx: got"),
        (("segment_len:", "segment_length:"), ":11: layers.mixer.ecp.segment_length: got"),
        (
            ("mix: uniform", "mix: random"),
            ":8: layers.mix: got 'random'; allowed: one of uniform, per_layer, hybrid",
        ),
        (
            ("metric: flops_fwd", "metric: flops"),
            ":14: objectives.1.metric: got 'flops'; allowed: one of",
        ),
        (
            (
                "direction: minimize}\n  - {metric: flops_fwd",
                "direction: lower}\n  - {metric: flops_fwd",
            ),
            ":13: objectives.0.direction: got 'lower'",
        ),
        (
            ("metric: flops_fwd, direction: minimize", "metric: flops_fwd, direction: maximize"),
            ":14: objectives.1.direction: got 'maximize'; allowed: minimize (flops_fwd: smaller",
        ),
        (
            ("objectives:\n", "constraints: [{metric: accuracy, max: 0.5}]\nobjectives:\n"),
            ":12: constraints.0.metric: got 'accuracy'; allowed: a metric where smaller is better",
        ),
        (
            ("  mix: uniform\n", "  mix: uniform\n  placement: first\n"),
            ":9: layers.placement: got 'first'; allowed: only with mix: hybrid",
        ),
    ],
)
def test_bad_space_names_file_line_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    assert edit[0] in BASE
    path = tmp_path / "space.yaml"
    path.write_text(BASE.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as e:
        load_space(path)
    text = str(e.value)
    assert text.startswith(str(path)) and message in text, text
    assert "\n" not in text


def test_empty_malformed_and_contradictory_spaces(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty.yaml"):
        load_space(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nparams: {d_model: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_space(broken)
    # every d_model is indivisible by every n_heads: nothing can be built
    contradictory = parse_space(
        BASE.replace("d_model: {choices: [32, 64]}", "d_model: {choices: [30, 50]}")
        .replace("n_heads: 2, segment_len", "n_heads: 4, segment_len")
        .replace("n_heads: {choices: [2, 4]}", "n_heads: {choices: [4, 8]}"),
        source="contra.yaml",
    )
    with pytest.raises(
        ConfigError,
        match="contra.yaml: space: got '.*'; allowed: a space with at least one buildable model",
    ):
        check_buildable(contradictory, tries=16)


def test_metric_names_and_directions_come_from_the_registry() -> None:
    from archsearch.metrics import all_metrics

    # the direction may be left out: it is the metric's own
    space = parse_space(
        BASE.replace("{metric: flops_fwd, direction: minimize}", "{metric: flops_fwd}")
    )
    assert [(o.metric, o.direction) for o in space.objectives] == [
        ("bits_per_byte", "minimize"),
        ("flops_fwd", "minimize"),
    ]
    with pytest.raises(ConfigError) as e:
        parse_space(BASE.replace("metric: flops_fwd", "metric: flops"))
    assert e.value.allowed == "one of " + ", ".join(all_metrics())
    # every registered metric can be an objective
    for name, m in all_metrics().items():
        text = BASE.replace("  - {metric: flops_fwd, direction: minimize}\n", "").replace(
            "{metric: bits_per_byte, direction: minimize}", f"{{metric: {name}}}"
        )
        assert parse_space(text).objectives[0].direction == m.direction
