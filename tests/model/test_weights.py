"""Trained weights next to a model file: a safetensors round trip gives identical logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import archsearch
from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.model.config import dump_model_config
from archsearch.model.weights import architecture_hash, save_weights, weights_metadata

runner = CliRunner()

DECODER = {
    "name": "tiny-decoder",
    "d_model": 32,
    "vocab_size": 256,
    "max_seq_len": 32,
    "tie_embeddings": True,
    "layers": [{"repeat": 2, "mixer": {"kind": "softmax", "n_heads": 2}}],
}
PERCEIVER = {
    "name": "tiny-perceiver",
    "d_model": 32,
    "vocab_size": 256,
    "max_seq_len": 32,
    "pos_encoding": "rope",
    "family": {"kind": "perceiver_ar", "n_latents": 8},
    "layers": [{"repeat": 2, "mixer": {"kind": "softmax", "n_heads": 2}}],
}
HYBRID = {
    "name": "tiny-hsm-hybrid",
    "d_model": 32,
    "vocab_size": 256,
    "max_seq_len": 32,
    "layers": [
        {"repeat": 2, "mixer": {"kind": "hsm", "mixing": "ab"}},
        {"mixer": {"kind": "softmax", "n_heads": 2}},
    ],
}


def _pair(tmp_path: Path, data: dict) -> tuple[Path, torch.nn.Module]:
    """A model file and a 'trained' model of it (weights moved off their initial values)."""
    cfg = archsearch.load_model(data)
    yaml = tmp_path / f"{cfg.name}.yaml"
    yaml.write_text(dump_model_config(cfg))
    torch.manual_seed(1)
    model = archsearch.build(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_weights(model, cfg, yaml.with_suffix(".safetensors"))
    return yaml, model.eval()


@pytest.mark.parametrize("data", [DECODER, PERCEIVER, HYBRID], ids=lambda d: d["name"])
def test_a_round_trip_gives_identical_logits(tmp_path: Path, data: dict) -> None:
    yaml, model = _pair(tmp_path, data)
    loaded = archsearch.load_trained(yaml)
    x = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    meta = weights_metadata(yaml.with_suffix(".safetensors"))
    assert meta["model_sha256"] == architecture_hash(archsearch.load_model(yaml))
    assert meta["archsearch_version"] == archsearch.__version__
    if data.get("tie_embeddings"):  # tied again on load, not two copies
        assert loaded.head.weight is loaded.tok_emb.weight


def test_a_mismatched_pair_is_one_line(tmp_path: Path) -> None:
    yaml, _ = _pair(tmp_path, DECODER)
    other = tmp_path / "wider.yaml"
    other.write_text(dump_model_config(archsearch.load_model({**DECODER, "d_model": 64})))
    with pytest.raises(ConfigError, match="another architecture"):
        archsearch.load_trained(other, yaml.with_suffix(".safetensors"))
    with pytest.raises(ConfigError, match="existing .safetensors"):
        archsearch.load_trained(other)
    # a file without the header (another tool's) with the wrong tensors: the tensors are named
    bare = tmp_path / "bare.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(bare))
    with pytest.raises(ConfigError, match="the tensors of the model"):
        archsearch.load_trained(yaml, bare)
    # from the CLI: exit 2 and one line (train --save-weights refuses an existing file)
    r = runner.invoke(
        app,
        [
            "train",
            str(yaml),
            "--budget-tokens",
            "256",
            "--save-weights",
            str(yaml.with_suffix(".safetensors")),
            "-o",
            str(tmp_path / "run"),
        ],
    )
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--save-weights" in r.stderr


def test_train_saves_its_weights(tmp_path: Path) -> None:
    yaml = tmp_path / "m.yaml"
    yaml.write_text(dump_model_config(archsearch.load_model(DECODER)))
    weights = tmp_path / "w" / "m.safetensors"
    args = ["train", str(yaml), "--budget-tokens", "512", "-b", "4", "--evals", "1"]
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "run"), "--save-weights", str(weights)])
    assert r.exit_code == 0, r.stderr
    model = archsearch.load_trained(yaml, weights)
    fresh = archsearch.build(yaml)
    pairs = zip(model.parameters(), fresh.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)  # trained, not the initial weights
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "completed"
