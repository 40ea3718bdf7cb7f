"""Model config YAML: exact round trips, repeat expansion, errors that point into the file."""

from pathlib import Path

import pytest

from archsearch.errors import ConfigError
from archsearch.mixers import list_mixers
from archsearch.model.config import (
    dump_model_config,
    load_model_config,
    parse_model_config,
)

ROOT = Path(__file__).resolve().parents[2]
YAMLS = sorted((ROOT / "models").glob("*.yaml")) + sorted(
    (ROOT / "archsearch" / "defaults").glob("*.yaml")
)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_shipped_yaml_round_trips_exactly(path):
    cfg = load_model_config(path)
    text = dump_model_config(cfg)
    again = parse_model_config(text)
    assert again == cfg
    assert dump_model_config(again) == text


def test_repeat_expands_and_compresses():
    cfg = load_model_config(ROOT / "models" / "local-global.yaml")
    kinds = [b.mixer.kind for b in cfg.layers]
    assert kinds == ["sliding_window"] * 3 + ["softmax"] + ["sliding_window"] * 3 + ["softmax"]
    assert dump_model_config(cfg).count("repeat: 3") == 2


BAD = [
    (
        "d_model: 64\nlayers:\n  - {mixer: {kind: sofmax}}\n",
        "layers[0].mixer.kind",
        3,
        "a registered mixer: " + ", ".join(list_mixers()),
    ),
    (
        "d_model: 64\nlayers:\n  - mixer:\n      kind: softmax\n      n_heads: four\n",
        "layers[0].mixer.n_heads",
        5,
        "an integer",
    ),
    ("layers:\n  - {mixer: {kind: softmax}}\n", "d_model", None, "required"),
    ("d_model: 64\n", "layers", None, "required"),
    (
        "d_model: 96\nlayers:\n  - {repeat: 2, mixer: {kind: softmax}}\n"
        "  - {mixer: {kind: softmax, n_heads: 5}}\n",
        "layers[1].mixer.n_heads",
        4,
        "a divisor of d_model=96",
    ),
    (
        "d_model: 64\nlayers:\n  - {mixer: {kind: s2attn, group_size: 9}}\n",
        "layers[0].mixer.group_size",
        3,
        "an even integer",
    ),
    (
        "d_model: 64\nlayers:\n  - {mixer: {kind: softmax, n_heads: 16}}\n",  # head width 4: fine
        None,
        None,
        None,
    ),
    (
        "d_model: 48\nlayers:\n  - {mixer: {kind: softmax, n_heads: 16}}\n",  # head width 3 + RoPE
        "layers[0].mixer.n_heads",
        3,
        "even for RoPE",
    ),
    (
        "d_model: 64\npos_encoding: alibi\nlayers:\n  - {mixer: {kind: softmax}}\n",
        "pos_encoding",
        2,
        "one of 'rope', 'learned', 'none'",
    ),
    (
        "d_model: 64\nlayers:\n  - {mixer: {kind: softmax}, mlp_ratio: -1}\n",
        "layers[0].mlp_ratio",
        3,
        "a number > 0",
    ),
    (
        "d_model: 64\nlayers:\n  - {mixer: {kind: softmax}, repeat: 0}\n",
        "layers[0].repeat",
        3,
        "an integer from 1 to 1,024",
    ),
    (
        "d_model: 64\nlayers:\n  - {mixer: {kind: softmax}, mlp: 2}\n",
        "layers[0].mlp",
        3,
        "one of the fields mixer, mlp_ratio, repeat",
    ),
    ("d_model: 64\nlayers: [{mixer: {kind: softmax}\n", "yaml", 3, "well-formed YAML"),
    ("- 1\n- 2\n", "model", None, "a mapping"),
]


@pytest.mark.parametrize(("text", "field", "line", "allowed"), BAD)
def test_bad_configs_name_file_line_field_and_allowed(text, field, line, allowed):
    if field is None:
        parse_model_config(text, source="m.yaml")
        return
    with pytest.raises(ConfigError) as info:
        parse_model_config(text, source="m.yaml")
    e = info.value
    assert e.field == field
    assert e.source == "m.yaml"
    if line is not None:
        assert e.line == line
    assert allowed in str(e)
    assert "\n" not in str(e)


def test_seq_len_checks():
    cfg = parse_model_config(
        "d_model: 64\nmax_seq_len: 128\npos_encoding: learned\n"
        "layers:\n  - {mixer: {kind: s2attn, n_heads: 2, group_size: 32}}\n"
    )
    cfg.check_seq_len(128)
    with pytest.raises(ConfigError, match="at most max_seq_len=128"):
        cfg.check_seq_len(256)
    with pytest.raises(ConfigError, match=r"layers\[0\]\.mixer\.group_size"):
        cfg.check_seq_len(48)


def test_mlp_hidden_is_config_arithmetic():
    """The MLP width lives on the config, so costs need no model code."""
    cfg = parse_model_config(
        "d_model: 20\nlayers:\n  - {mixer: {kind: softmax, n_heads: 2}, mlp_ratio: 2.5}\n"
    )
    assert cfg.mlp_hidden(cfg.layers[0]) == 50
    assert cfg.mlp_hidden(1.13) == 23  # round(22.6)
    assert cfg.mlp_hidden(0.01) == 1  # at least one hidden unit


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("d_model: 1000000000", "d_model"),
        ("max_seq_len: 1000000000000", "max_seq_len"),
        ("vocab_size: 100000000000", "vocab_size"),
        ("rope_theta: .inf", "rope_theta"),
    ],
)
def test_sizes_past_the_documented_bounds_are_one_line_errors(line, field):
    base = "d_model: 64\nlayers:\n  - {mixer: {kind: softmax, n_heads: 2}}\n"
    text = base.replace("d_model: 64", line) if line.startswith("d_model") else base + line
    with pytest.raises(ConfigError) as info:
        parse_model_config(text, source="m.yaml")
    assert info.value.field == field


def test_repeat_is_bounded_before_the_stack_is_expanded():
    text = "d_model: 64\nlayers:\n  - {repeat: 100000000, mixer: {kind: softmax, n_heads: 2}}\n"
    with pytest.raises(ConfigError, match=r"layers\[0\]\.repeat.*1,024"):
        parse_model_config(text, source="m.yaml")


def test_a_list_where_a_mixer_kind_is_expected():
    text = "d_model: 64\nlayers:\n  - {mixer: {kind: [softmax]}}\n"
    with pytest.raises(ConfigError, match=r"layers\[0\]\.mixer\.kind"):
        parse_model_config(text, source="m.yaml")
