"""The search end to end on tiny models: outcomes, constraints, halving, resume, clashes,
Ctrl-C, and the report. Real SQLite storages in tmp_path, real training (a few seconds)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from _spaces import tiny_space
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.errors import ConfigError
from archsearch.model.config import load_model_config
from archsearch.profiling.profiles import Profile
from archsearch.search.loop import Search
from archsearch.search.results import FINISHED
from archsearch.search.space import parse_space, sample
from archsearch.search.storage import open_storage, storage_url
from archsearch.search.study import open_study, settings_from

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()

TINY = tiny_space(heads="[2, 3]")


def _search(tmp_path, text=TINY, name="tiny", **kw):  # type: ignore[no-untyped-def]
    space = parse_space(text, source=str(tmp_path / "tiny.yaml"))
    settings = settings_from(space, profile=Profile(), **kw)
    storage = open_storage(storage_url(tmp_path / "study.db"))
    study = open_study(settings, storage, name, n_trials=8, seed=0)
    return Search(study, settings), study, space


def _outcomes(study):  # type: ignore[no-untyped-def]
    return [t.user_attrs.get("outcome") for t in study.get_trials(deepcopy=False)]


def test_outcomes_values_constraints_and_rebuild(tmp_path):
    search, study, space = _search(tmp_path)
    summary = search.run(10)
    assert summary.finished == 10 and not summary.interrupted
    trials = study.get_trials()
    outcomes = _outcomes(study)
    assert set(outcomes) <= FINISHED
    assert "invalid" in outcomes  # n_heads = 3 does not divide 16 or 32
    for t in trials:
        o = t.user_attrs["outcome"]
        if o == "invalid":
            assert t.state.name == "PRUNED" and t.constraints["valid"] == 1.0
            assert "n_heads" in t.user_attrs["reason"]
            continue
        # the stored model is exactly what the pure sampler rebuilds from the parameters
        rebuilt = sample(optuna.trial.FixedTrial(t.params), space)
        stored = dict(t.user_attrs["model"])
        stored.pop("name")
        assert json.loads(json.dumps(rebuilt)) == stored
        m = t.user_attrs["metrics"]
        assert t.constraints["params"] == pytest.approx(m["params"] / 30000 - 1)
        if o == "complete":
            assert t.state.name == "COMPLETE"
            assert t.values == [m["bits_per_byte"], m["flops_fwd"]]
            assert 0 < m["bits_per_byte"] < 8.5
            assert t.user_attrs["fidelity"][-1]["rung"] == 1
        if o == "stopped":
            f = t.user_attrs["fidelity"]
            assert t.state.name == "PRUNED" and len(f) == 1 and f[0]["promoted"] is False
            assert t.user_attrs["trained_tokens"] < 3072
    assert "complete" in outcomes


def test_profiled_constraint_makes_a_trial_infeasible_without_training(tmp_path):
    text = TINY.replace("max: 30000", "max: 1000")  # every model has more parameters
    search, study, _ = _search(tmp_path, text)
    search.run(3)
    for t in study.get_trials():
        if t.user_attrs["outcome"] == "invalid":
            continue
        assert t.user_attrs["outcome"] == "infeasible" and t.state.name == "PRUNED"
        assert t.constraints["params"] > 0
        assert "not trained" in t.user_attrs["reason"]
        assert "trained_tokens" not in t.user_attrs


def test_divergence_and_errors_are_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    text = TINY.replace("batch_size: 4,", "batch_size: 4, lr: 1.0e+12,")
    text = text.replace("[2, 3]", "[2]").replace("max: 30000", "max: 1000000")
    search, study, _ = _search(tmp_path, text)
    search.run(2)
    assert set(_outcomes(study)) == {"diverged"}
    t = study.get_trials()[0]
    assert t.state.name == "FAIL" and "training loss became" in t.user_attrs["reason"]

    # an out-of-memory error while profiling: recorded as failed with its reason
    import archsearch.search.pipeline as pipeline_mod

    def oom(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("CUDA out of memory. Tried to allocate 80.00 GiB")

    monkeypatch.setattr(pipeline_mod, "measure_metrics", oom)
    (tmp_path / "b").mkdir()
    search2, study2, _ = _search(tmp_path / "b")
    search2.run(2)
    failed = [t for t in study2.get_trials() if t.user_attrs["outcome"] == "failed"]
    assert failed and all(t.state.name == "FAIL" for t in failed)
    assert failed[0].user_attrs["reason"].startswith("out of memory")


def test_resume_clash_and_duplicates(tmp_path):
    search, study, _ = _search(tmp_path)
    search.run(4)
    before = {t.number: (t.user_attrs["outcome"], t.values) for t in study.get_trials()}
    # same settings: resumes, keeps everything, adds up to the new total
    search2, study2, _ = _search(tmp_path)
    assert search2.run(4).ran == 0
    search2.run(7)
    after = {t.number: (t.user_attrs["outcome"], t.values) for t in study2.get_trials()}
    assert len(after) == 7 and all(after[n] == v for n, v in before.items())
    # duplicates of a finished trial reuse its result instead of training again
    dups = [t for t in study2.get_trials() if t.user_attrs.get("duplicate_of") is not None]
    assert dups, "the tiny space repeats itself within 7 trials (seeded)"
    for t in dups:
        first = study2.get_trials()[t.user_attrs["duplicate_of"]]
        assert t.params == first.params and t.values == first.values
        assert "trained_tokens" not in t.user_attrs or t.user_attrs.get("train_seconds") is None

    # a different space under the same study name: one error, the storage untouched
    db = tmp_path / "study.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match=r"--study.*differ in space\.train\.budget_tokens"):
        _search(tmp_path, TINY.replace("budget_tokens: 3072", "budget_tokens: 4096"))
    with pytest.raises(ConfigError, match=r"differ in task\.options\.eval_tokens"):
        _search(tmp_path, task_options={"eval_tokens": 1024})
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_settings_errors_name_the_field(tmp_path):
    space = parse_space(TINY, source="tiny.yaml")
    with pytest.raises(ConfigError, match="tiny.yaml.*objectives.metric.*accuracy"):
        settings_from(
            parse_space(
                TINY.replace("bits_per_byte, direction: minimize", "accuracy, direction: maximize"),
                source="tiny.yaml",
            ),
            profile=Profile(),
        )
    with pytest.raises(ConfigError, match="train.halving.eta"):
        settings_from(
            parse_space(TINY.replace("eta: 2", "eta: 1"), source="tiny.yaml"), profile=Profile()
        )
    with pytest.raises(ConfigError, match="train.nonsense"):
        settings_from(
            parse_space(TINY.replace("evals: 2,", "nonsense: 2,"), source="tiny.yaml"),
            profile=Profile(),
        )
    with pytest.raises(ConfigError, match="storage"):
        open_storage("nosuchdb://x/y")
    with pytest.raises(ConfigError, match="existing folder"):
        open_storage(storage_url(tmp_path / "no" / "such" / "study.db"))
    s = settings_from(space, profile=Profile())
    assert s.task_options["eval_stride"] == 16  # one stride for every model: T / 2
    assert s.train.eval_at == (0.5,)


def _finished(db: Path) -> dict[int, tuple]:  # type: ignore[type-arg]
    st = optuna.load_study(study_name="tiny", storage=storage_url(db))
    return {
        t.number: (t.user_attrs.get("outcome"), t.values, t.user_attrs.get("retry_of"))
        for t in st.get_trials()
        if t.user_attrs.get("outcome") in FINISHED
    }


def test_sigint_mid_trial_then_resume_loses_and_duplicates_nothing(tmp_path):
    space = tmp_path / "tiny.yaml"
    # long enough trials (a few seconds each) to interrupt one mid-training
    space.write_text(
        TINY.replace("budget_tokens: 3072", "budget_tokens: 120000").replace("[2, 3]", "[2]")
    )
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "archsearch", "search", str(space), "--trials", "6"]
    cmd += ["--out", str(out), "--no-report", "--json", "--rungs", "1"]
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    db = out / "study.db"
    deadline = time.time() + 240
    seen: list[int] = []
    try:
        while time.time() < deadline:
            time.sleep(0.2)
            if proc.poll() is not None:
                out_, err_ = proc.communicate()
                pytest.fail(f"the search ended before it was interrupted: {err_.decode()[-2000:]}")
            if not db.exists():
                continue
            try:
                st = optuna.load_study(study_name="tiny", storage=storage_url(db))
                trials = st.get_trials()
            except Exception:  # the study is still being created
                continue
            done = [t for t in trials if t.state.name != "RUNNING"]
            running = [t.number for t in trials if t.state.name == "RUNNING"]
            # the same trial running in two polls 0.5 s apart: it is training (a duplicate or an
            # infeasible trial finishes in milliseconds)
            if len(done) >= 2 and running and running == seen:
                break
            seen = running
            time.sleep(0.3)
        else:
            pytest.fail("the search never had 2 finished trials and one training")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    st = optuna.load_study(study_name="tiny", storage=storage_url(db))
    interrupted = [t for t in st.get_trials() if t.user_attrs.get("outcome") == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].state.name == "FAIL"
    assert interrupted[0].user_attrs["reason"].startswith("interrupted at step")  # mid-training
    waiting = [t for t in st.get_trials() if t.state.name == "WAITING"]
    # queued again with the same parameters (Optuna keeps them as the trial's fixed_params)
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == interrupted[0].params
    before = _finished(db)
    assert len(before) >= 2

    res = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    after = _finished(db)
    assert len(after) == 6  # exactly the requested number of finished trials
    assert all(after[n] == v for n, v in before.items())  # nothing finished was lost or redone
    retries = [n for n, v in after.items() if v[2] is not None]
    assert len(retries) == 1 and after[retries[0]][2] == interrupted[0].number
    st = optuna.load_study(study_name="tiny", storage=storage_url(db))
    assert st.get_trials()[retries[0]].params == interrupted[0].params
    assert not [t for t in st.get_trials() if t.state.name in ("RUNNING", "WAITING")]


def test_cli_search_report_and_exported_models(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "run"
    r = runner.invoke(app, ["search", str(space), "--trials", "6", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["finished"] == 6 and res["storage"].endswith("study.db")
    rep = res["report"]
    for key in ("trials", "pareto", "report", "families"):
        assert Path(rep["files"][key]).stat().st_size > 0
    assert rep["front"], "a front of at least one trial"
    for f in rep["front"]:
        cfg = load_model_config(f["model"])  # the exported file is a model file as it is
        assert cfg.d_model in (16, 32)
        b = runner.invoke(app, ["build", f["model"], "--json"])
        assert b.exit_code == 0, b.stderr
    md = (out / "report" / "report.md").read_text()
    assert "## Pareto front" in md and "pareto.png" in md and "archsearch search" in md
    csv_text = (out / "report" / "trials.csv").read_text()
    assert csv_text.count("\n") == 7 and "outcome" in csv_text.splitlines()[0]

    # the report command reads the same study from the folder, the file or the URL
    for src in (str(out), str(out / "study.db"), storage_url(out / "study.db")):
        r2 = runner.invoke(app, ["report", src, "--out", str(tmp_path / "rep2"), "--json"])
        assert r2.exit_code == 0, r2.stderr
        assert json.loads(r2.stdout)["trials"] == 6

    # the same command again: resumes, nothing to run
    r3 = runner.invoke(app, ["search", str(space), "--trials", "6", "--out", str(out), "--json"])
    assert r3.exit_code == 0 and json.loads(r3.stdout)["ran"] == 0


def test_three_objectives_plot_in_3d(tmp_path):
    space = tmp_path / "tiny3.yaml"
    space.write_text(
        TINY.replace(
            "  - {metric: flops_fwd, direction: minimize}\n",
            "  - {metric: flops_fwd, direction: minimize}\n"
            "  - {metric: decode_state_bytes, direction: minimize}\n",
        )
    )
    out = tmp_path / "run"
    r = runner.invoke(app, ["search", str(space), "-n", "5", "-o", str(out), "--rungs", "1"])
    assert r.exit_code == 0, r.stderr
    for name in ("pareto.png", "pareto_pairs.png", "hypervolume.png", "report.md"):
        assert (out / "report" / name).stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["search", "nope.yaml"], "nope.yaml"),
        (["search", "quickstart", "--sampler", "cmaes"], "--sampler"),
        (["search", "quickstart", "--storage", "nosuchdb://x"], "storage"),
        (["search", "quickstart", "--task", "chess"], "--task"),
        (["search", "quickstart", "--eta", "1"], "halving.eta"),
        (["report", "no/such/folder"], "SOURCE"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_cli_clash_and_malformed_space_leave_the_study_alone(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "run"
    base = ["search", str(space), "-n", "2", "-o", str(out), "--no-report"]
    first = runner.invoke(app, base)  # exit 1 when no sampled model completes (n_heads 3)
    assert first.exit_code == (1 if "error: no result" in first.output else 0), first.output
    db = out / "study.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    space.write_text(TINY.replace("d_model: {choices: [16, 32]}", "d_model: {choices: [32]}"))
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "differ in space.params.d_model" in r.stderr
    space.write_text(TINY.replace("n_layers: {low: 1, high: 2}", "n_layers: {low: 1, hi: 2}"))
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "tiny.yaml:7" in r.stderr and "params.n_layers.hi" in r.stderr
    space.write_text("version: 1\nname: [unclosed\n")
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "tiny.yaml" in r.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    r = runner.invoke(app, ["report", str(out), "--study", "other"])
    assert r.exit_code == 2 and "one of tiny" in r.stderr


def test_quickstart_runs_a_real_search(tmp_path):
    out = tmp_path / "qs"
    r = runner.invoke(
        app, ["quickstart", "-o", str(out), "-n", "2", "--budget-tokens", "8k", "--json"]
    )
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["finished"] == 2
    assert (out / "report" / "pareto.png").stat().st_size > 0
    assert (out / "study.db").exists()


def test_quickstart_default_is_equal_compute(tmp_path):
    """The shipped quickstart space compares models at equal training FLOPs; --budget-flops
    scales that budget (here tiny) and the report says which comparison it is."""
    out = tmp_path / "qs"
    r = runner.invoke(
        app, ["quickstart", "-o", str(out), "-n", "1", "--budget-flops", "2e10", "--json"]
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["finished"] == 1
    assert "at equal compute" in (out / "report" / "report.md").read_text()


def test_contradictory_space_is_refused_before_a_study_exists(tmp_path):
    space = tmp_path / "never.yaml"
    space.write_text(TINY.replace("[2, 3]", "[3]").replace("    hsm: {mixing: ab}\n", ""))
    out = tmp_path / "run"
    r = runner.invoke(app, ["search", str(space), "-n", "2", "-o", str(out)])
    assert r.exit_code == 2 and "never.yaml" in r.stderr and "buildable" in r.stderr
    assert not (out / "study.db").exists()


def test_latency_objective_and_memory_constraint_are_measured(tmp_path):
    text = TINY.replace(
        "  - {metric: flops_fwd, direction: minimize}\n",
        "  - {metric: latency_ms, direction: minimize}\n",
    ).replace("{metric: params, max: 30000}", "{metric: peak_memory_gib, max: 1}")
    search, study, _ = _search(tmp_path, text, rungs=1)
    search.run(3)
    done = [t for t in study.get_trials() if t.user_attrs["outcome"] == "complete"]
    assert done
    for t in done:
        m = t.user_attrs["metrics"]
        assert t.values[1] == m["latency_ms"] > 0
        assert 0 < m["peak_memory_gib"] < 1 and t.constraints["peak_memory_gib"] < 0
