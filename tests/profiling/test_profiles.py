"""Measurement presets: the shipped files load, bad fields are one-line errors with file:line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.profiling.profiles import (
    PROFILES_DIR,
    Profile,
    check_device,
    load_profile,
    resolve_profile_path,
)


@pytest.mark.parametrize("name", ["cpu", "h100-bf16", "a100-bf16", "h200-bf16"])
def test_shipped_profiles_load(name: str) -> None:
    p = load_profile(name)
    assert p.name == name
    assert p == load_profile(PROFILES_DIR / f"{name}.yaml")
    if name != "cpu":
        assert p.device == "cuda" and p.dtype == "bfloat16" and p.peak_tflops


def test_cpu_yaml_spells_out_the_defaults() -> None:
    """Profile() is the CPU preset; the file lists every field so users see what they can set."""
    assert load_profile("cpu").replace(description="") == Profile()
    text = (PROFILES_DIR / "cpu.yaml").read_text()
    for f in dataclasses.fields(Profile):
        assert f"\n{f.name}:" in text, f"cpu.yaml does not show field {f.name}"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "prof.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, field, line",
    [
        ("device: cpu\nrepeat: 5\n", "repeat", 2),  # unknown field (typo of repeats)
        ("dtype: float64\n", "dtype", 1),
        ("batch_size: 0\n", "batch_size", 1),
        ("device: tpu\n", "device", 1),
        ("warmup: 1\npeak_tflops: -3\n", "peak_tflops", 2),
        ("threads: two\n", "threads", 1),
    ],
)
def test_bad_profile_fields_name_file_line_field(
    tmp_path: Path, text: str, field: str, line: int
) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_profile(p)
    assert e.value.field == field
    assert e.value.source == str(p) and e.value.line == line
    assert "\n" not in str(e.value)


def test_unknown_preset_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="cpu, h100-bf16"):
        resolve_profile_path("h900")


def test_missing_profile_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an existing YAML file"):
        load_profile(tmp_path / "nope.yaml")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_cuda_profile_without_gpu_is_refused() -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        check_device(load_profile("h100-bf16"), source="profiles/h100-bf16.yaml")
    check_device(load_profile("cpu"))  # fine
