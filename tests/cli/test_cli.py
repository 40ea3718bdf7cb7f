"""The CLI as a user meets it: help, listings, build, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys\n"
        "from archsearch.cli import main\n"
        "sys.argv = ['archsearch', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "build" in out.stdout and "mixers" in out.stdout
    assert "TORCH False" in out.stdout


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "archsearch", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("archsearch ")


def test_mixers_table_and_json():
    r = runner.invoke(app, ["mixers"])
    assert r.exit_code == 0
    for name in ("softmax", "sliding_window", "s2attn"):
        assert name in r.stdout
    r = runner.invoke(app, ["mixers", "--json"])
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["s2attn"]["hyperparameters"]["group_size"] == 256
    assert rows["softmax"]["training_complexity"] == "O(T²·D)"


def test_mixers_lists_hsm_with_its_options():
    r = runner.invoke(app, ["mixers", "--json"])
    hsm = {row["name"]: row for row in json.loads(r.stdout)}["hsm"]
    assert hsm["incremental_decode"] is True
    assert hsm["choices"]["mixing"] == ["ab", "gated", "pair_softmax", "pair_mlp"]
    assert hsm["choices"]["schedule"] == ["ascending", "descending"]
    assert {"base", "levels", "shift_groups", "pad", "ab_weights"} <= set(hsm["hyperparameters"])
    r = runner.invoke(app, ["mixers"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "reconstructed" in r.stdout
    assert "mixing=ab (ab|gated|pair_softmax|pair_mlp)" in r.stdout


def test_build_hsm_hybrid_shows_each_layers_shift():
    path = str(ROOT / "models" / "hsm-hybrid-6l.yaml")
    r = runner.invoke(app, ["build", path, "-T", "1k", "--json", "--count"])
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert [lay["mixer"] for lay in s["layers"]] == ["hsm"] * 2 + ["softmax"] + ["hsm"] * 3
    assert [lay["derived"].get("shifts") for lay in s["layers"]] == [[1], [2], None, [4], [8], [16]]
    assert s["layers"][0]["mixer_elementwise"] == 3 * 1024 * 512
    assert s["flop_counter"]["relative_difference"] == 0.0
    r = runner.invoke(app, ["build", path, "-T", "1k", "--count"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.stderr
    assert "shifts=16" in r.stdout and "+0.000%" in r.stdout


def test_families_table_and_json():
    r = runner.invoke(app, ["families", "--json"])
    assert r.exit_code == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"decoder", "perceiver_ar", "v1_double", "v2_split", "v3_compress"}
    assert rows["decoder"]["scored_positions"] == "all T"
    assert rows["decoder"]["hyperparameters"] == {}
    assert rows["perceiver_ar"]["hyperparameters"]["n_latents"] == 512
    assert rows["perceiver_ar"]["incremental_decode"] is True
    assert rows["v2_split"]["hyperparameters"]["n_ctx_segments"] == 2
    assert rows["v3_compress"]["hyperparameters"]["aligned_residual"] is True
    for name in ("v1_double", "v2_split", "v3_compress"):
        assert rows[name]["incremental_decode"] is False
    # `archsearch mixers` shows both tables: ecp among the mixers, the families below
    r = runner.invoke(app, ["mixers"])
    assert "registered model families" in r.stdout
    for name in ("ecp", "perceiver_ar", "v1_double", "v2_split", "v3_compress"):
        assert name in r.stdout
    assert r.stdout.count("INCREMENTAL") == 3  # NOT INCREMENTAL: v1_double, v2_split, v3_compress


def test_build_gpt2_small_json():
    r = runner.invoke(app, ["build", str(ROOT / "models" / "gpt2-small.yaml"), "--json", "--count"])
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["params"]["total"] == 124_439_808
    assert abs(s["flop_counter"]["relative_difference"]) < 0.01
    assert len(s["layers"]) == 12
    assert s["flops"]["training_exact"] == 3 * s["flops"]["forward_exact"]


@pytest.mark.parametrize("name", ["perceiver-ar", "v1-double", "v2-split", "v3-compress"])
def test_build_family_models_counter_matches(name):
    r = runner.invoke(app, ["build", str(ROOT / "models" / f"{name}.yaml"), "-T", "2k", "--count"])
    assert r.exit_code == 0, r.stderr
    assert "+0.000%" in r.stdout and "family " in r.stdout


def test_build_table_output():
    r = runner.invoke(
        app, ["build", str(ROOT / "models" / "local-global.yaml"), "-T", "2k", "--count"]
    )
    assert r.exit_code == 0, r.stderr
    assert "FlopCounterMode check" in r.stdout and "+0.000%" in r.stdout


@pytest.mark.parametrize(
    ("text", "args", "needle"),
    [
        (
            "d_model: 64\nlayers:\n  - {mixer: {kind: sofmax}}\n",
            [],
            "m.yaml:3: layers[0].mixer.kind: got 'sofmax'",
        ),
        (
            "d_model: 64\nlayers:\n  - {mixer: {kind: softmax, n_heads: 3}}\n",
            [],
            "layers[0].mixer.n_heads: got 3; allowed: a divisor of d_model=64",
        ),
        (
            "d_model: 64\nlayers:\n  - {mixer: {kind: s2attn, group_size: 64}}\n",
            ["--seq-len", "100"],
            "group_size: got 64; allowed: a divisor of the sequence length 100",
        ),
        ("d_model: [64\n", [], "well-formed YAML"),
        ("d_model: 64\nlayers:\n  - {mixer: {kind: softmax}}\n", ["-T", "ten"], "seq_len"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(tmp_path, text, args, needle):
    f = tmp_path / "m.yaml"
    f.write_text(text)
    r = runner.invoke(app, ["build", str(f), *args])
    assert r.exit_code == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr + r.stdout


def test_missing_file_and_debug_traceback(tmp_path):
    r = runner.invoke(app, ["build", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "nope.yaml" in r.stderr and "an existing YAML file" in r.stderr
    r = runner.invoke(app, ["--debug", "build", str(tmp_path / "nope.yaml")])
    assert r.exit_code != 0 and r.exception is not None  # --debug lets the exception through


def test_counter_disagreement_is_reported_not_hidden(tmp_path, monkeypatch):
    """If FlopCounterMode disagreed with the analytic count, build must say so."""
    import archsearch.profiling.counter as counter

    real = counter.count_flops

    def undercount(fn, *a, **k):
        r = real(fn, *a, **k)
        return counter.FlopReport(total=int(r.total * 0.9), by_op=r.by_op)

    monkeypatch.setattr(counter, "count_flops", undercount)
    r = runner.invoke(app, ["build", str(ROOT / "models" / "gpt2-small.yaml"), "--json", "--count"])
    c = json.loads(r.stdout)["flop_counter"]
    assert c["counted_forward"] != c["analytic_forward_matmul_dense"]
    assert abs(c["relative_difference"] + 0.1) < 1e-6
    r = runner.invoke(
        app, ["build", str(ROOT / "models" / "gpt2-small.yaml"), "--count"], env={"COLUMNS": "200"}
    )
    assert "-10.000%" in r.stdout
