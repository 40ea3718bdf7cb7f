"""Meta-device builds skip the random initialisation (pointless there, and ``normal_`` on a meta
tensor imports ``torch._dynamo``); builds on a real device initialise exactly as before."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archsearch.model.config import model_config_from_dict
from archsearch.model.transformer import build_model, count_params, skip_init_on_meta
from archsearch.testing.families import family_cases

ROOT = Path(__file__).resolve().parents[2]
SEEDED = json.loads((Path(__file__).with_name("seeded_params.json")).read_text())


def _digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.skipif(
    torch.__version__ != SEEDED["torch"],
    reason=f"the digests were recorded with torch {SEEDED['torch']} (its random streams)",
)
@pytest.mark.parametrize("name", sorted(SEEDED["models"]))
def test_seeded_cpu_build_is_bitwise_what_it_was(name):
    entry = SEEDED["models"][name]
    cfg = model_config_from_dict(entry["config"])
    build_model(cfg, device="meta")  # draws nothing from the generator
    torch.manual_seed(1234)
    assert _digest(build_model(cfg, device="cpu")) == entry["sha256"]


@pytest.mark.parametrize("case", family_cases()[:4], ids=lambda c: c.id)
def test_meta_build_draws_nothing_and_has_the_real_shapes(case):
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    meta = build_model(case.cfg, device="meta")
    assert torch.equal(torch.random.get_rng_state(), state)
    cpu = build_model(case.cfg, device="cpu")
    got = [(n, p.shape, p.dtype) for n, p in meta.named_parameters()]
    assert got == [(n, p.shape, p.dtype) for n, p in cpu.named_parameters()]
    assert all(p.is_meta for p in meta.parameters())


def test_skip_init_leaves_other_devices_alone():
    t = torch.zeros(4)
    with skip_init_on_meta():
        torch.nn.init.normal_(t)
        m = torch.nn.init.normal_(torch.empty(4, device="meta"))
    assert t.abs().sum() > 0 and m.is_meta


def test_meta_build_does_not_import_dynamo():
    shipped = [str(ROOT / "models" / m) for m in ("gpt2-small.yaml", "hsm-hybrid-6l.yaml")]
    code = (
        "import sys\n"
        "from archsearch.model.config import load_model_config\n"
        "from archsearch.model.transformer import build_model, count_params\n"
        "from archsearch.testing.families import family_cases\n"
        f"for p in {shipped!r}:\n"
        "    count_params(load_model_config(p))\n"
        "for c in family_cases():\n"
        "    build_model(c.cfg, device='meta')\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False", out.stderr


def test_count_params_unchanged_for_a_shipped_model():
    from archsearch.model.config import load_model_config

    cfg = load_model_config(ROOT / "models" / "gpt2-small.yaml")
    assert count_params(cfg)["total"] == 124_439_808


def test_archsearch_build_does_not_import_dynamo() -> None:
    """``archsearch build`` (analytic FLOPs, no counter cross-check) stays near a bare
    ``import torch``: nothing on its path pulls in ``torch._dynamo``."""
    model = Path(__file__).resolve().parents[2] / "models" / "gpt2-small.yaml"
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archsearch", "build", str(model), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["params"]["total"] == 124_439_808
    assert "torch._dynamo" not in res.stderr
