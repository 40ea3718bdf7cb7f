"""optuna-dashboard and experiment tracking, for real: a tiny search is run once, its study
opened in optuna-dashboard's own WSGI app (queried through its JSON API), and its trials read
back from MLflow and TensorBoard with their own readers. Each part skips when its optional
extra is not installed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.search.results import feasible_front, trial_record
from archsearch.search.storage import load_study, release

sys.path.insert(0, str(Path(__file__).parent))
from _spaces import tiny_space  # noqa: E402

TRAIN = "{budget_tokens: 1024, batch_size: 4, evals: 2, halving: {eta: 2, rungs: 1}}"
runner = CliRunner()


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3-trial search of tiny decoders, tracked to every destination whose library is here."""
    from archsearch.search.run import run_search

    root = tmp_path_factory.mktemp("dash")
    space = root / "tiny.yaml"
    space.write_text(tiny_space("tinydash", train=TRAIN))
    tracks = []
    if _has("mlflow"):
        tracks.append(f"mlflow:{root / 'mlflow'}")
    if _has("tensorboard"):
        tracks.append(f"tensorboard:{root / 'tb'}")
    out = root / "run"
    run_search(str(space), trials=3, out=out, report=False, track=tracks)
    st, url = load_study(out / "study.db", None, write=False)
    release(url)
    return {"root": root, "out": out, "study": st, "url": url}


def test_objectives_are_named(searched: dict) -> None:
    st = searched["study"]
    assert st.metric_names == ["bits_per_byte", "flops_fwd"]
    assert list(st.trials_dataframe().filter(like="values_")) == [
        "values_bits_per_byte",
        "values_flops_fwd",
    ]


def test_curves_figure_holds_every_trained_trial(searched: dict) -> None:
    from archsearch.search.dashboard import curves_figure

    st = searched["study"]
    fig = curves_figure(st)
    trained = [t for t in st.trials if any(x > 0 for x, _ in t.user_attrs.get("curve") or [])]
    assert trained and len(fig["data"]) == len(trained)
    first = fig["data"][0]
    assert first["x"] == [x for x, _ in trained[0].user_attrs["curve"] if x > 0]
    assert fig["layout"]["yaxis"]["title"]["text"] == "bits_per_byte"


def _serve(study_file: Path):
    from archsearch.search.dashboard import make_server, publish_curves
    from archsearch.search.storage import TrialStore

    st, url = load_study(study_file, None)
    assert publish_curves(st) >= 1
    server = make_server(TrialStore(st).storage, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, st, url


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.loads(r.read())


def test_dashboard_api_names_objectives_and_front(searched: dict) -> None:
    pytest.importorskip("optuna_dashboard")
    server, st, url = _serve(searched["out"] / "study.db")
    try:
        port = server.server_port
        (summary,) = _get(port, "/api/studies")["study_summaries"]
        assert summary["study_name"] == "tinydash"
        detail = _get(port, f"/api/studies/{summary['study_id']}")
        assert detail["objective_names"] == ["bits_per_byte", "flops_fwd"]
        records = [trial_record(t, st.metric_names) for t in st.trials]
        front = feasible_front(records, st.metric_names, ["minimize", "minimize"])
        # the dashboard's Pareto front holds the study's (the feasible front, plus any tie)
        assert {t["number"] for t in detail["best_trials"]} >= {r.number for r in front}
        graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
        assert graphs["learning-curves"]["data"]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=30).read()
        assert b"<html" in page.lower()
    finally:
        server.shutdown()
        server.server_close()
        release(url)


def _chromium() -> str | None:
    names = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


@pytest.mark.slow
def test_dashboard_screenshot(searched: dict, tmp_path: Path) -> None:
    pytest.importorskip("optuna_dashboard")
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium here (chromium-headless-shell, chromium, google-chrome)")
    server, st, url = _serve(searched["out"] / "study.db")
    shot = tmp_path / "dashboard.png"
    try:
        (summary,) = _get(server.server_port, "/api/studies")["study_summaries"]
        page = f"http://127.0.0.1:{server.server_port}/dashboard/studies/{summary['study_id']}"
        subprocess.run(
            [browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1400,2200", "--virtual-time-budget=10000",
             f"--screenshot={shot}", page],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        release(url)
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one


def test_dashboard_without_the_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    res = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert "\n" not in err and "pip install 'archsearch[dashboard]'" in err


def test_dashboard_folder_without_a_study(tmp_path: Path) -> None:
    pytest.importorskip("optuna_dashboard")
    res = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert res.exit_code == 2 and "holds neither" in res.stderr


@pytest.mark.parametrize(
    ("value", "says"),
    [("foo:x", "mlflow:PATH or tensorboard:PATH"), ("mlflow:", "mlflow:PATH"), ("x", "PATH")],
)
def test_track_malformed(value: str, says: str, tmp_path: Path) -> None:
    res = runner.invoke(app, ["search", "quickstart", "-n", "1", "--track", value])
    assert res.exit_code == 2 and says in res.stderr and "\n" not in res.stderr.strip()


@pytest.mark.parametrize(("kind", "module"), [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_track_without_the_library(
    kind: str, module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    res = runner.invoke(app, ["search", "quickstart", "-n", "1", "--track", f"{kind}:{tmp_path}"])
    assert res.exit_code == 2
    assert f"pip install 'archsearch[{kind}]'" in res.stderr
    assert not (tmp_path / "run").exists()


def _finished(st) -> list:
    return [t for t in st.trials if t.user_attrs.get("outcome") not in (None, "interrupted")]


def test_mlflow_holds_every_trial(searched: dict) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from archsearch.search.tracking import mlflow_uri

    client = MlflowClient(tracking_uri=mlflow_uri(searched["root"] / "mlflow"))
    exp = client.get_experiment_by_name("tinydash")
    runs = {
        int(r.data.tags["archsearch.trial"]): r for r in client.search_runs([exp.experiment_id])
    }
    st = searched["study"]
    assert sorted(runs) == [t.number for t in _finished(st)]
    for t in _finished(st):
        r = runs[t.number]
        assert r.data.tags["outcome"] == t.user_attrs["outcome"]
        assert r.data.params == {k: str(v) for k, v in t.params.items()}
        assert r.data.metrics["params"] == t.user_attrs["metrics"]["params"]
        curve = [(x, y) for x, y in t.user_attrs.get("curve") or [] if x > 0]
        if t.state.name == "COMPLETE":
            assert r.data.metrics["bits_per_byte"] == pytest.approx(t.values[0])
            history = client.get_metric_history(r.info.run_id, "curve/bits_per_byte")
            assert [m.step for m in history] == [x for x, _ in curve]
            assert [m.value for m in history] == pytest.approx([y for _, y in curve])


def test_tensorboard_holds_every_trial(searched: dict) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    st = searched["study"]
    root = searched["root"] / "tb" / "tinydash"
    assert sorted(p.name for p in root.iterdir()) == [
        f"trial-{t.number:05d}" for t in _finished(st)
    ]
    for t in _finished(st):
        ea = EventAccumulator(str(root / f"trial-{t.number:05d}"))
        ea.Reload()
        curve = [(x, y) for x, y in t.user_attrs.get("curve") or [] if x > 0]
        if curve:
            got = ea.Scalars("curve/bits_per_byte")
            assert [e.step for e in got] == [x for x, _ in curve]
            assert [e.value for e in got] == pytest.approx([y for _, y in curve], rel=1e-6)
        assert "final/params" in ea.Tags()["scalars"]


def test_a_resumed_study_is_not_logged_twice(searched: dict) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from archsearch.search.study import settings_of
    from archsearch.search.tracking import TrackSpec, make_tracker, mlflow_uri

    st, path = searched["study"], searched["root"] / "mlflow"
    tracker = make_tracker(TrackSpec("mlflow", path), "tinydash", settings_of(st))
    tracker.load(st)
    client = MlflowClient(tracking_uri=mlflow_uri(path))
    exp = client.get_experiment_by_name("tinydash")
    assert len(client.search_runs([exp.experiment_id])) == len(_finished(st))


def test_single_objective_curve_is_reported_as_intermediate_values(tmp_path: Path) -> None:
    """Optuna keeps intermediate values for one objective only: there the curve is reported."""
    from archsearch.search.run import run_search

    text = tiny_space("tinyone", train=TRAIN, params_max=None).replace(
        "  - {metric: flops_fwd, direction: minimize}\n", ""
    )
    space = tmp_path / "one.yaml"
    space.write_text(text)
    run_search(str(space), trials=1, out=tmp_path / "run", report=False)
    st, url = load_study(tmp_path / "run" / "study.db", None, write=False)
    release(url)
    (t,) = st.trials
    assert t.user_attrs["outcome"] == "complete", t.user_attrs.get("reason")
    assert st.metric_names == ["bits_per_byte"]
    curve = {x: y for x, y in t.user_attrs["curve"] if x > 0}
    assert t.intermediate_values == pytest.approx(curve)


@pytest.mark.slow
def test_dashboard_command_serves_the_study(searched: dict) -> None:
    """``archsearch dashboard FOLDER --port 0`` in a subprocess: it says where it listens, the
    study is there, and Ctrl-C stops it cleanly."""
    pytest.importorskip("optuna_dashboard")
    import signal

    cmd = [sys.executable, "-m", "archsearch", "dashboard", str(searched["out"]), "--port", "0"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        line = proc.stderr.readline()
        assert line.startswith("optuna-dashboard on sqlite:///"), line
        base = line.split(": ", 1)[1].split()[0].removesuffix("/dashboard")
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as r:
            names = [s["study_name"] for s in json.loads(r.read())["study_summaries"]]
        assert names == ["tinydash"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


@pytest.mark.slow
def test_workers_trials_are_tracked_by_the_parent(tmp_path: Path) -> None:
    """With ``--workers`` the trials run in other processes: the parent logs them as it reloads
    the study."""
    pytest.importorskip("tensorboard")
    from archsearch.search.run import run_search

    space = tmp_path / "tiny.yaml"
    space.write_text(tiny_space("tinywork", train=TRAIN))
    tb = tmp_path / "tb"
    res = run_search(
        str(space), trials=2, workers=2, threads=1, out=tmp_path / "run", report=False,
        track=[f"tensorboard:{tb}"],
    )  # fmt: skip
    assert res["worker_exit_codes"] == [0, 0]
    st, url = load_study(tmp_path / "run" / "study.journal", None, write=False)
    release(url)
    want = [f"trial-{t.number:05d}" for t in _finished(st)]
    assert len(want) >= 2 and sorted(p.name for p in (tb / "tinywork").iterdir()) == want
