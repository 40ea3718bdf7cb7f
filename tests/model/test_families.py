"""Every registered family runs the shipped conformance suite (archsearch.testing.families),
plus the family registry and the YAML forms of ``family``."""

import pytest

from archsearch.errors import ConfigError
from archsearch.model import get_family, list_families
from archsearch.model.config import ModelConfig, dump_model_config, parse_model_config
from archsearch.model.families import DecoderConfig
from archsearch.testing.families import FamilyCase, FamilyConformance, family_cases


@pytest.fixture(params=family_cases(), ids=lambda c: c.id)
def case(request: pytest.FixtureRequest) -> FamilyCase:
    return request.param


class TestFamilies(FamilyConformance):
    pass


def test_every_family_has_examples():
    for kind in list_families():
        assert get_family(kind).example_configs(), f"{kind} has no example configs"


def test_family_may_be_a_name_and_decoder_dumps_as_one():
    text = "d_model: 16\nfamily: decoder\nlayers: [{mixer: {kind: softmax, n_heads: 2}}]\n"
    cfg = parse_model_config(text)
    assert cfg.family == DecoderConfig()
    assert "family: decoder\n" in dump_model_config(cfg)
    # the string form also works from Python
    assert ModelConfig(d_model=16, family="decoder", layers=cfg.layers) == cfg


def test_unknown_family_lists_the_registered_ones():
    text = "d_model: 16\nfamily: {kind: percevier}\nlayers: [{mixer: {kind: softmax}}]\n"
    with pytest.raises(ConfigError) as info:
        parse_model_config(text, source="m.yaml")
    assert info.value.field == "family.kind"
    assert info.value.line == 2
    for kind in list_families():
        assert kind in info.value.allowed


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        (
            "d_model: 16\nmax_seq_len: 32\nfamily:\n  kind: perceiver_ar\n  n_latents: 0\n"
            "layers: [{mixer: {kind: softmax, n_heads: 2}}]\n",
            "family.n_latents",
            5,
        ),
        (
            "d_model: 16\nmax_seq_len: 32\nfamily: {kind: v1_double, n_latents: 8}\nlayers:\n"
            "  - {repeat: 2, mixer: {kind: softmax, n_heads: 2}}\n"
            "  - {mixer: {kind: sliding_window, n_heads: 2}}\n",
            "layers[1].mixer.kind",  # the YAML item (the third layer), not the layer index
            6,
        ),
        ("d_model: 16\nfamily: 3\nlayers: [{mixer: {kind: softmax}}]\n", "family", 2),
    ],
)
def test_family_errors_point_into_the_file(text, field, line):
    with pytest.raises(ConfigError) as info:
        parse_model_config(text, source="m.yaml")
    assert (info.value.field, info.value.line) == (field, line), str(info.value)
