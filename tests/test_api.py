"""The Python API (``archsearch.load_model``, ``count_flops``, ``build``, ``profile``, ``train``,
``run_search``, ``report``), called as a notebook would: the README's example, and the same answers
as the command line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archsearch
from archsearch.cli import app
from archsearch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "tiny-softmax.yaml"
TEXT = "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun. " * 60


def test_import_is_cheap_and_exports_the_api() -> None:
    code = "import sys, archsearch; print('torch' in sys.modules, sorted(archsearch.API))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 1)[0] == "False"
    for name in ("load_model", "count_flops", "build", "profile", "train", "run_search", "report"):
        assert name in archsearch.API
    for name in archsearch.API:  # every exported name resolves (api.py imports it)
        assert callable(getattr(archsearch, name)) and name in dir(archsearch)
    with pytest.raises(AttributeError):
        archsearch.no_such_function  # noqa: B018


def test_load_model_from_path_mapping_or_config_with_sets() -> None:
    cfg = archsearch.load_model(MODEL, sets=["d_model=64"])
    assert cfg.d_model == 64
    data = {"d_model": 32, "layers": [{"mixer": {"kind": "softmax", "n_heads": 2}}]}
    assert archsearch.load_model(data).d_model == 32
    assert (
        archsearch.load_model(cfg, sets=["layers.0.mixer.n_heads=8"]).layers[0].mixer.n_heads == 8
    )
    with pytest.raises(ConfigError, match="n_heads"):
        archsearch.load_model(MODEL, sets=["layers.0.mixer.n_heads=7"])
    with pytest.raises(ConfigError, match="a YAML path, a mapping or a ModelConfig"):
        archsearch.load_model(3.5)  # type: ignore[arg-type]


def test_count_flops_is_what_build_reports() -> None:
    flops = archsearch.count_flops(MODEL, seq_len=128)
    res = CliRunner().invoke(app, ["build", str(MODEL), "-T", "128", "--json", "--no-count"])
    cli = json.loads(res.output)
    assert flops["training_exact"] == cli["flops"]["training_exact"]
    assert flops["forward_exact"] == cli["flops"]["forward_exact"]
    assert flops["params"] == cli["params"]


def test_build_gives_a_module_that_runs() -> None:
    import torch

    model = archsearch.build(MODEL)
    assert isinstance(model, torch.nn.Module)
    logits = model(torch.randint(0, 256, (1, 16)))
    assert logits.shape[-1] == 256


def test_profile_row_matches_the_analytic_flops() -> None:
    row = archsearch.profile(MODEL, seq_len=64, metrics=("flops",))
    assert row["status"] == "ok" and row["seq_len"] == 64
    assert row["flops_fwd"] == archsearch.count_flops(MODEL, 64)["forward_exact"]
    with pytest.raises(ConfigError, match="profile"):
        archsearch.profile(MODEL, profile="no-such-preset")


def test_train_then_search_then_report(tmp_path: Path) -> None:
    data = tmp_path / "t.txt"
    data.write_text(TEXT)
    res = archsearch.train(
        MODEL,
        task_options={"data": str(data)},
        seq_len=32,
        budget_tokens=2048,
        batch_size=4,
        evals=1,
    )
    assert res.status == "completed" and res.final["bits_per_byte"] > 0
    with pytest.raises(ConfigError, match="recipe"):
        archsearch.train(MODEL, budget_tokens=10, no_such_field=1)


def test_search_and_report_as_the_readme_says(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("_spaces", ROOT / "tests/search/_spaces.py")
    spaces = importlib.util.module_from_spec(spec)  # the search tests' one tiny space
    spec.loader.exec_module(spaces)
    space = tmp_path / "space.yaml"
    space.write_text(spaces.tiny_space())
    out = tmp_path / "study"
    summary = archsearch.run_search(space, trials=2, out=out, seed=0)
    assert summary["interrupted"] is False
    rep = archsearch.report(out)
    assert Path(rep["out"]) == out / "report" and (out / "report" / "report.md").exists()
    again = archsearch.report(out / "report")  # a saved report folder is redrawn
    assert again["trials"] == rep["trials"]
