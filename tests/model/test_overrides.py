"""``--set KEY=VALUE``: model fields changed on the command line, validated like the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.model.config import load_model_config_located
from archsearch.model.overrides import apply_sets, parse_set

MODEL = Path(__file__).resolve().parents[2] / "models" / "tiny-softmax.yaml"


def test_parse_set_reads_one_yaml_value() -> None:
    assert parse_set("d_model=256") == (["d_model"], 256)
    assert parse_set("layers.0.mlp_ratio=2.5") == (["layers", "0", "mlp_ratio"], 2.5)
    assert parse_set("layers.0.mixer={kind: hsm, mixing: ab}")[1] == {"kind": "hsm", "mixing": "ab"}
    assert parse_set("name=a=b") == (["name"], "a=b")  # the first '=' splits
    assert parse_set("pos_encoding=null") == (["pos_encoding"], None)


def test_sets_apply_in_order_and_leave_the_input_alone() -> None:
    data = {"d_model": 64, "layers": [{"mixer": {"kind": "softmax", "n_heads": 2}}]}
    out = apply_sets(data, ["d_model=128", "layers.0.mixer.n_heads=8", "d_model=256", "family.x=1"])
    assert out["d_model"] == 256 and out["layers"][0]["mixer"]["n_heads"] == 8
    assert out["family"] == {"x": 1}  # a missing mapping key is added; validation judges it
    assert data["d_model"] == 64 and data["layers"][0]["mixer"]["n_heads"] == 2


def test_a_model_with_sets_is_the_model_with_those_fields() -> None:
    cfg, _ = load_model_config_located(MODEL, ["d_model=256", "layers.0.mixer.n_heads=8"])
    assert cfg.d_model == 256 and cfg.layers[0].mixer.n_heads == 8
    base, _ = load_model_config_located(MODEL)
    assert base.d_model == 128 and base.layers[0].mixer.n_heads == 4


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["d_model"], "KEY=VALUE"),
        (["=3"], "KEY=VALUE"),
        (["layers..mixer=1"], "KEY=VALUE"),
        (["layers.7.mixer.n_heads=2"], "an index 0..0 after 'layers'"),
        (["layers.x.mixer=2"], "an index 0..0 after 'layers'"),
        (["name.first=2"], "'name' is a value"),
        (["d_model=[1"], "a single YAML value"),
    ],
)
def test_malformed_sets_are_one_line(sets: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_model_config_located(MODEL, sets)
    assert e.value.field == "--set" and needle in str(e.value) and "\n" not in str(e.value)


def test_a_bad_value_names_set_as_its_source() -> None:
    with pytest.raises(ConfigError) as e:
        load_model_config_located(MODEL, ["layers.0.mixer.n_heads=7"])
    assert str(e.value).startswith(f"{MODEL} --set: layers[0].mixer.n_heads: got 7;")
    with pytest.raises(ConfigError) as e:  # the file's n_heads: 4 does not divide 90
        load_model_config_located(MODEL, ["d_model=90"])
    assert "layers[0].mixer.n_heads" in str(e.value) and f"{MODEL}:9:" in str(e.value)


@pytest.mark.parametrize("cmd", ["build", "profile", "train", "compare"])
def test_commands_take_set(cmd: str) -> None:
    res = CliRunner().invoke(app, [cmd, str(MODEL), "--set", "layers.0.mixer.n_heads=7"])
    assert res.exit_code == 2, res.output
    assert "--set: layers[0].mixer.n_heads: got 7" in res.output
    assert res.output.count("\n") == 1


def test_build_with_set_equals_build_of_the_edited_file(tmp_path: Path) -> None:
    edited = tmp_path / "m.yaml"
    edited.write_text(MODEL.read_text().replace("d_model: 128", "d_model: 64"))
    runs = [
        CliRunner().invoke(app, ["build", str(MODEL), "--set", "d_model=64", "--json"]),
        CliRunner().invoke(app, ["build", str(edited), "--json"]),
    ]
    a, b = (json.loads(r.output) for r in runs)
    assert a["params"] == b["params"] and a["flops"] == b["flops"]
    assert (
        a["params"]["total"]
        < json.loads(CliRunner().invoke(app, ["build", str(MODEL), "--json"]).output)["params"][
            "total"
        ]
    )
