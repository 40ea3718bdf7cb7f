"""The guarded YAML loader: plain data only, bounded size, depth and alias expansion."""

from __future__ import annotations

import pytest

from archsearch.errors import ConfigError
from archsearch.yamlio import MAX_BYTES, MAX_DEPTH, load_yaml, parse_yaml


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: 1\nb: 2\na: 3\n", "duplicate key (first on line 1)"),
        ("a: &x [1, *x]\n", "recursive alias"),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nesting deeper"),
        ("a: " + "[" * 20000 + "]" * 20000, "nesting deeper"),
        ("a: {kind: softmax, n_heads}\n", "with no value"),
        ("a: !!set {x, y}\n", "tag"),
        ("a: !!int abc\n", "!!int"),
        ("a: !local x\n", "tag"),
        ("? !!python/name:os.system\n: 1\n", "tag"),
        ("? [a, b]\n: 1\n", "as a key"),
        ("? {a: 1}\n: 1\n", "as a key"),
        ("a: &b {x: 1}\nc: {<<: *b}\n", "merge"),
        (
            "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n"
            + "".join(
                f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 9)
            ),
            "values",
        ),
    ],
)
def test_hostile_yaml_is_one_line(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, source="x.yaml")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("x.yaml")


def test_plain_data_and_lines():
    data, lines = parse_yaml("a:\n  b: [1, 2.5, true, ~, !!str 3]\nwhen: 2024-01-01\n")
    assert data == {"a": {"b": [1, 2.5, True, None, "3"]}, "when": "2024-01-01"}
    assert lines[("a", "b")] == 2
    assert lines[("when",)] == 3


def test_block_keys_may_have_empty_values():
    assert parse_yaml("a:\nb: 1\n")[0] == {"a": None, "b": 1}


def test_big_files_are_refused_before_reading_them_whole(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("# " + "x" * MAX_BYTES)
    with pytest.raises(ConfigError, match="KiB"):
        load_yaml(p)


def test_long_values_are_cut_in_the_error_line():
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: !!int " + "9x" * 5000 + "\n")
    assert len(str(info.value)) < 400
