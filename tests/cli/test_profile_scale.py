"""``archsearch profile`` and ``archsearch scale`` as a user meets them (tiny models, CPU)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app

runner = CliRunner()


def _model(tmp_path: Path, name: str, mixer: str, layers: int = 2) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(
        f"name: {name}\nd_model: 32\nvocab_size: 64\nmax_seq_len: 256\npos_encoding: rope\n"
        f"layers:\n  - {{repeat: {layers}, mixer: {mixer}}}\n"
    )
    return p


def _profile(tmp_path: Path, **fields: object) -> Path:
    base = {"warmup": 1, "repeats": 2, "latency_max_seq_len": 512, "threads": 1}
    base.update(fields)
    p = tmp_path / "quick.yaml"
    p.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items()))
    return p


@pytest.fixture()
def models(tmp_path: Path) -> list[Path]:
    return [
        _model(tmp_path, "soft", "{kind: softmax, n_heads: 2}"),
        _model(tmp_path, "hsm", "{kind: hsm, mixing: ab, coverage: cycle}"),
        # 96 does not divide 256/512/1024/2048: every length is invalid for this one
        _model(tmp_path, "ecp96", "{kind: ecp, n_heads: 2, segment_len: 96}"),
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_scale_writes_the_report_and_skips_invalid_lengths(
    tmp_path: Path, models: list[Path]
) -> None:
    out = tmp_path / "report"
    prof = _profile(tmp_path)
    args = [
        "scale",
        *map(str, models),
        "-L",
        "256,512,1k,2k",
        "--metrics",
        "flops,memory,latency",
        "--profile",
        str(prof),
        "--out",
        str(out),
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    for f in (
        "scaling.csv",
        "exponents.csv",
        "summary.md",
        "env.json",
        "flops.png",
        "mixing.png",
        "memory.png",
        "latency.png",
    ):
        assert (out / f).stat().st_size > 0, f
    rows = _rows(out / "scaling.csv")
    assert len(rows) == 3 * 4
    bad = [r for r in rows if r["variant"] == "ecp96"]
    assert all(r["status"] == "invalid" and "segment_len" in r["note"] for r in bad)
    assert "skipped" in r.output and "ecp96" in r.output
    soft = {int(r["seq_len"]): r for r in rows if r["variant"] == "soft"}
    # timed up to latency_max_seq_len, then recorded as not timed
    assert float(soft[512]["latency_ms"]) > 0 and float(soft[256]["train_ms_median"]) > 0
    assert soft[1024]["latency_status"].startswith("not timed: T > latency_max_seq_len")
    assert soft[2048]["latency_ms"] == ""
    # decoding is timed for decodable variants
    assert float(soft[256]["decode_ms"]) > 0
    for r_ in rows:
        if r_["status"] == "ok":
            assert r_["flops_counters_agree"] == "True"
            assert int(r_["flops_fcm_forward"]) == int(r_["flops_fwd_dense"])
    fits = {(f["variant"], f["metric"]): f for f in _rows(out / "exponents.csv")}
    assert float(fits["soft", "mixing"]["fitted_exponent"]) == pytest.approx(2.0, abs=0.05)
    assert float(fits["hsm", "mixing"]["fitted_exponent"]) == pytest.approx(1.0, abs=0.05)
    md = (out / "summary.md").read_text()
    assert "## Fitted exponents" in md and "![flops](flops.png)" in md
    assert "ecp96 at T = 256" in md  # the skipped lengths are listed
    env = json.loads((out / "env.json").read_text())
    assert env["environment"]["torch"] and "git_sha" in env["environment"]
    assert env["profile"]["repeats"] == 2
    # one name per quantity: the registry's, in its unit (GiB of a whole number of bytes)
    gib = float(soft[256]["peak_memory_gib"])
    assert gib > 0 and (gib * 2**30).is_integer()
    assert "flops_fwd_exact" not in rows[0] and int(soft[256]["flops_fwd"]) > 0


def test_replot_redraws_the_report_from_its_csv_alone(
    tmp_path: Path, models: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    args = ["scale", *map(str, models[:2]), "-L", "128,256,512", "--metrics", "flops,memory"]
    r = runner.invoke(app, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    for f in out.glob("*.png"):
        f.unlink()
    (out / "summary.md").unlink()

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("a replot built a model")

    import archsearch.model.transformer as transformer
    import archsearch.profiling.runner as runner_mod

    monkeypatch.setattr(transformer.LanguageModel, "__init__", no_model)
    monkeypatch.setattr(runner_mod, "profile_point", no_model)
    r = runner.invoke(app, ["scale", "--replot", str(out)])
    assert r.exit_code == 0, r.output
    after = {f.name: f.read_bytes() for f in out.iterdir()}
    assert after == before  # plots, exponents.csv and summary.md drawn again, byte for byte
    assert "flops.png" in after and "memory.png" in after


@pytest.mark.parametrize(
    "args, needle",
    [
        (["scale", "--replot", "no/such/folder"], "--replot: got 'no/such/folder'"),
        (["scale"], "MODELS"),
    ],
)
def test_scale_bad_replot_is_one_line_exit_2(args: list[str], needle: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and len(r.output.strip().splitlines()) == 1


def test_scale_refuses_to_overwrite_a_report(tmp_path: Path, models: list[Path]) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "scaling.csv").write_text("precious\n")
    r = runner.invoke(app, ["scale", str(models[0]), "-L", "256", "--out", str(out)])
    assert r.exit_code == 2
    assert "--force" in r.output and len(r.output.strip().splitlines()) == 1
    assert (out / "scaling.csv").read_text() == "precious\n"
    r = runner.invoke(
        app,
        ["scale", str(models[0]), "-L", "256", "--metrics", "flops", "--out", str(out), "--force"],
    )
    assert r.exit_code == 0, r.output
    assert (out / "scaling.csv").read_text().startswith("variant,seq_len")


def test_time_budget_stops_timing_longer_lengths(tmp_path: Path, models: list[Path]) -> None:
    prof = _profile(tmp_path, time_budget_s=0.0001, latency_max_seq_len=None)
    r = runner.invoke(
        app,
        [
            "profile",
            str(models[0]),
            "-T",
            "256,512",
            "--metrics",
            "latency",
            "--profile",
            str(prof),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    pts = json.loads(r.stdout)["points"]
    assert pts[0]["row"]["latency_status"] == "ok"
    assert "time_budget_s" in pts[1]["row"]["latency_status"]
    assert "latency" not in pts[1]["details"]


def test_profile_json_reports_three_counters_memory_and_latency(
    tmp_path: Path, models: list[Path]
) -> None:
    csv_path = tmp_path / "p.csv"
    r = runner.invoke(
        app,
        [
            "profile",
            str(models[0]),
            "-T",
            "128",
            "--profile",
            str(_profile(tmp_path)),
            "--json",
            "--csv",
            str(csv_path),
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["environment"]["archsearch"] and data["profile"]["name"] == "quick"
    (pt,) = data["points"]
    counters = pt["details"]["flops"]["counters"]
    assert {"fcm", "fcm_fwd_bwd", "fvcore", "fvcore_default"} <= set(counters)
    assert all(c["ok"] for c in counters.values() if c["checked"])
    # fvcore as shipped misses the SDPA term, and the report says so
    assert pt["details"]["flops"]["missed_by_fvcore_default"] > 0
    assert not counters["fvcore_default"]["ok"]
    assert any(u["op"] == "_safe_softmax" or "softmax" in u["op"] for u in pt["uncounted_ops"])
    mem = pt["details"]["memory_estimate"]
    assert mem["training_peak_bytes"] > mem["inference_peak_bytes"] > mem["params_bytes"] > 0
    lat = pt["details"]["latency"]
    assert lat["forward"]["median_ms"] > 0 and lat["threads"] == 1
    assert _rows(csv_path)[0]["variant"] == "soft"


def test_profile_details_prints_the_long_tables(tmp_path: Path, models: list[Path]) -> None:
    args = ["profile", str(models[1]), "-T", "64", "--metrics", "flops,memory"]
    r = runner.invoke(app, [*args, "--details"])
    assert r.exit_code == 0, r.output
    long = ("hsm at T = 64", "FlopCounterMode", "fvcore", "training-step peak", "counted 0 by")
    for text in long:
        assert text in r.stdout
    r = runner.invoke(app, args)  # without --details: the one summary table only
    assert r.exit_code == 0, r.output
    assert not any(text in r.stdout for text in long)
    assert "hsm" in r.stdout and "--details" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-T", "100"], "segment_len: got 96"),  # a length the variant cannot take
        (["-T", "96", "--metrics", "speed"], "metrics: got 'speed'"),
        (["-T", "96", "--profile", "h900"], "profile: got 'h900'"),
        (["-T", "ten"], "seq_len: got 'ten'"),
    ],
)
def test_profile_bad_input_is_one_line_exit_2(
    models: list[Path], args: list[str], needle: str
) -> None:
    r = runner.invoke(app, ["profile", str(models[2]), *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output and len(r.output.strip().splitlines()) == 1
    assert "Traceback" not in r.output


def test_bad_profile_file_names_file_and_line(tmp_path: Path, models: list[Path]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("device: cpu\nrepeat: 3\n")
    r = runner.invoke(app, ["profile", str(models[0]), "--profile", str(bad)])
    assert r.exit_code == 2
    assert f"{bad}:2: repeat: got 3" in r.output


def test_cuda_profile_without_a_gpu_exits_2(models: list[Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = runner.invoke(app, ["scale", str(models[0]), "--profile", "h100-bf16"])
    assert r.exit_code == 2
    assert "device: got 'cuda'" in r.output and "no CUDA device" in r.output
