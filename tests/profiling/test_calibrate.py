"""The CPU calibration (``archsearch doctor --calibrate``): the file's parsing and its one-line
errors, another machine's entry ignored with a note, a cpu profile picking up the calibrated peak,
and MFU in ``train --json`` and ``profile --json`` after a tiny calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.profiling.calibrate import (
    Calibration,
    calibrate,
    calibration_path,
    fingerprint,
    load_calibrations,
    lookup_peak,
    save_calibration,
)
from archsearch.profiling.profiles import Profile, device_peak, mfu_record

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has its own cache folder: the user's calibration is never read or written."""
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entry(peak: Any = 0.2, **fp: Any) -> dict[str, Any]:
    return {
        "fingerprint": {**fingerprint(torch.get_num_threads()), **fp},
        "date": "2025-01-31T12:00:00+00:00",
        "peak_tflops": {"float32": peak},
        "runs": [],
        "repeats": 1,
    }


def _write(data: Any) -> Path:
    path = calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_the_file_is_in_the_cache_folder(cache: Path) -> None:
    assert calibration_path() == cache / "calibration.json"


def test_a_written_entry_loads_back_and_is_used_by_a_cpu_profile() -> None:
    _write({"format": 1, "machines": [_entry(0.25)]})
    (cal,) = load_calibrations()
    assert cal.peak_tflops == {"float32": 0.25}
    peak = device_peak(Profile())
    assert peak.tflops == 0.25
    assert peak.source.startswith("calibrated 2025-01-31 on ")
    assert f"{torch.get_num_threads()} thread" in peak.source


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ("{not json", "calibration", "not JSON"),
        ('"a string"', "format", "no format"),
        ({"format": 2, "machines": []}, "format", "format 2"),
        ({"format": 1, "machines": {}}, "machines", "a list"),
        ({"format": 1, "machines": [_entry(-1.0)]}, "machines[0].peak_tflops.float32", "positive"),
        ({"format": 1, "machines": [_entry("fast")]}, "machines[0].peak_tflops.float32", "got"),
        ({"format": 1, "machines": [_entry(True)]}, "machines[0].peak_tflops.float32", "got"),
        ({"format": 1, "machines": [_entry(threads="2")]}, "machines[0].fingerprint", "integers"),
        ({"format": 1, "machines": [{**_entry(), "date": 5}]}, "machines[0].date", "ISO date"),
        (
            {"format": 1, "machines": [{**_entry(), "peak_tflops": {"fp8": 1}}]},
            "peak_tflops",
            "dtype",
        ),
        ({"format": 1, "machines": [{**_entry(), "runs": {}}]}, "machines[0]", "lists"),
        ({"format": 1, "machines": [7]}, "machines[0]", "a mapping"),
    ],
)
def test_a_damaged_file_is_a_one_line_error_and_a_note_not_a_peak(
    data: Any, field: str, says: str
) -> None:
    path = _write(data)
    with pytest.raises(ConfigError) as e:
        load_calibrations()
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and field in msg and says in msg, msg
    assert "archsearch doctor --calibrate" in msg
    peak = device_peak(Profile())
    assert peak.tflops is None
    assert peak.source.startswith("calibration ignored: ") and "\n" not in peak.source


def test_another_machines_entry_is_ignored_with_a_note() -> None:
    _write({"format": 1, "machines": [_entry(9.9, cpu="Some Other CPU", cores=128)]})
    found = lookup_peak("float32", torch.get_num_threads())
    assert found.tflops is None
    assert "no calibration for" in found.source and "1 of another machine" in found.source
    assert "archsearch doctor --calibrate" in found.source


def test_another_thread_count_is_another_machine() -> None:
    _write({"format": 1, "machines": [_entry(0.3, threads=3)]})
    assert lookup_peak("float32", 3).tflops == 0.3
    assert lookup_peak("float32", 1).tflops is None
    assert device_peak(Profile(threads=3)).tflops == 0.3


def test_no_file_says_how_to_get_one() -> None:
    peak = device_peak(Profile())
    assert peak.tflops is None
    assert peak.source == "no CPU calibration: run `archsearch doctor --calibrate` for MFU"


def test_a_dtype_not_calibrated_is_a_note() -> None:
    _write({"format": 1, "machines": [_entry(0.2)]})
    peak = device_peak(Profile(dtype="bfloat16"))
    assert peak.tflops is None and "no bfloat16 peak (only float32)" in peak.source


def test_an_explicit_peak_wins_and_a_gpu_profile_is_never_calibrated() -> None:
    _write({"format": 1, "machines": [_entry(0.2)]})
    assert device_peak(Profile(peak_tflops=0.5)) == device_peak(Profile(peak_tflops=0.5))
    assert device_peak(Profile(peak_tflops=0.5)).source == "profile cpu: peak_tflops"
    gpu = Profile(name="g", device="cuda")
    assert device_peak(gpu).tflops is None and "no peak_tflops" in device_peak(gpu).source


def test_mfu_record() -> None:
    peak = device_peak(Profile(peak_tflops=1.0))
    m = mfu_record(2e12, 4.0, peak)
    assert m == {
        "achieved_tflops": 0.5,
        "peak_tflops": 1.0,
        "peak_source": "profile cpu: peak_tflops",
        "mfu": 0.5,
    }
    assert mfu_record(1e12, 1.0, device_peak(Profile()))["mfu"] is None


def test_saving_replaces_the_same_machine_keeps_others_and_a_damaged_file() -> None:
    other = _entry(1.0, cpu="Other")
    _write({"format": 1, "machines": [other, _entry(0.1)]})
    cal = calibrate(sizes=(32,), repeats=1)
    save_calibration(cal)
    cals = load_calibrations()
    assert [c.fingerprint["cpu"] for c in cals] == ["Other", cal.fingerprint["cpu"]]
    assert cals[1].peak_tflops == cal.peak_tflops and cals[1].peak_tflops["float32"] > 0
    _write("{damaged")
    save_calibration(cal)
    assert len(load_calibrations()) == 1
    assert [p.name for p in calibration_path().parent.iterdir()] == ["calibration.json"]


def test_calibrate_records_threads_sizes_and_runs() -> None:
    cal = calibrate(threads=1, sizes=(32, 64), repeats=1)
    assert isinstance(cal, Calibration)
    assert cal.fingerprint["threads"] == 1
    assert [(r["dtype"], r["size"]) for r in cal.runs][:2] == [("float32", 32), ("float32", 64)]
    assert cal.peak_tflops["float32"] == max(r["tflops"] for r in cal.runs[:2])


def test_doctor_calibrate_json(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["doctor", "--json", "-o", str(tmp_path), "--calibrate", "--sizes", "32,64"]
        + ["--repeats", "1", "--threads", "1"],
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    c = got["calibration"]
    assert c["file"] == str(calibration_path()) and Path(c["file"]).is_file()
    assert c["fingerprint"]["threads"] == 1 and c["repeats"] == 1
    assert c["peak_tflops"]["float32"] > 0 and c["source"].startswith("calibrated ")
    assert [x["size"] for x in c["runs"] if x["dtype"] == "float32"] == [32, 64]
    assert lookup_peak("float32", 1).tflops == c["peak_tflops"]["float32"]


def test_doctor_lists_the_calibration_check() -> None:
    r = runner.invoke(app, ["doctor", "--json"])
    by = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert "archsearch doctor --calibrate" in by["calibration"]["detail"]
    _write("{damaged")
    r = runner.invoke(app, ["doctor", "--json"])
    by = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert by["calibration"]["status"] == "warn" and "not JSON" in by["calibration"]["detail"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sizes", "64"], "--sizes: got '64'; allowed: only with --calibrate"),
        (["--calibrate", "--sizes", "8"], "--sizes: got '8'; allowed: comma-separated"),
        (["--calibrate", "--sizes", "a,b"], "--sizes: got 'a,b'"),
        (["--calibrate", "--repeats", "0"], "--repeats: got 0; allowed: an integer from 1"),
        (["--calibrate", "--threads", "0"], "--threads: got 0"),
    ],
)
def test_doctor_calibrate_bad_options_are_one_line(args: list[str], says: str) -> None:
    r = runner.invoke(app, ["doctor", *args])
    assert r.exit_code == 2
    assert says in r.output and not calibration_path().exists()


def _tiny_model(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(
        "name: tiny\nd_model: 16\nvocab_size: 256\nmax_seq_len: 32\npos_encoding: rope\n"
        "layers:\n  - {repeat: 1, mixer: {kind: softmax, n_heads: 2}}\n"
    )
    return p


def test_train_json_has_mfu_after_a_tiny_calibration(tmp_path: Path) -> None:
    model = _tiny_model(tmp_path)
    args = ["train", str(model), "--budget-steps", "2", "--evals", "1", "-b", "2", "--json"]
    r = runner.invoke(app, ["doctor", "--calibrate", "--sizes", "32", "--repeats", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "after")])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)["env"]["mfu"]
    assert m["mfu"] == pytest.approx(m["achieved_tflops"] / m["peak_tflops"])
    assert m["peak_source"].startswith("calibrated ")
    saved = json.loads((tmp_path / "after" / "result.json").read_text())
    assert saved["env"]["mfu"] == m


def test_profile_shows_mfu_and_its_source_after_a_tiny_calibration(tmp_path: Path) -> None:
    model = _tiny_model(tmp_path)
    args = ["profile", str(model), "-p", "cpu", "--metrics", "latency", "--no-fvcore"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "MFU peak: no CPU calibration: run `archsearch doctor --calibrate`" in r.output
    runner.invoke(app, ["doctor", "--calibrate", "--sizes", "32", "--repeats", "1"])
    r = runner.invoke(app, [*args, "--json"])
    row = json.loads(r.stdout)["points"][0]["row"]
    assert row["fwd_mfu"] > 0 and row["peak_source"].startswith("calibrated ")
    assert row["fwd_mfu"] == pytest.approx(row["fwd_tflops"] / row["peak_tflops"])
    r = runner.invoke(app, args)
    assert "MFU peak: " in r.output and "calibrated " in r.output and "%" in r.output
