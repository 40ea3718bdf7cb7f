"""Several workers on one study, on Optuna's shared storages: a journal file on one machine and
a real PostgreSQL server (``scripts/postgres.sh``; CI starts one). One worker is killed with
SIGKILL mid-trial; the study must still end with exactly the requested finished trials, none
run twice, and the killed trial run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from archsearch.profiling.profiles import Profile
from archsearch.search.results import FINISHED
from archsearch.search.space import parse_space
from archsearch.search.storage import STORAGE_ENV, open_storage, redact
from archsearch.search.study import TARGET, open_study, settings_from

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = """\
version: 1
name: tinyw
seq_len: 32
fixed: {vocab_size: 256, max_seq_len: 32}
params:
  d_model: {choices: [16, 24, 32]}
  n_layers: {low: 1, high: 3}
  mlp_ratio: {choices: [2.0, 4.0]}
layers:
  mix: uniform
  mixer:
    softmax: {n_heads: {choices: [2, 4]}}
    hsm: {mixing: ab}
objectives:
  - {metric: bits_per_byte, direction: minimize}
  - {metric: flops_fwd, direction: minimize}
task: {name: lm, options: {eval_tokens: 512}}
train: {budget_tokens: 40000, batch_size: 4, evals: 2, halving: {eta: 2, rungs: 2}}
"""
PG = os.environ.get("ARCHSEARCH_TEST_POSTGRES")
NEEDS_PG = pytest.mark.skipif(
    PG is None and not os.environ.get("ARCHSEARCH_REQUIRE_POSTGRES"),
    reason='no PostgreSQL server: start one with `eval "$(bash scripts/postgres.sh start)"` '
    "(it sets ARCHSEARCH_TEST_POSTGRES); CI does",
)


def _create(url: str, n_trials: int) -> str:
    name = f"tinyw-{uuid.uuid4().hex[:8]}"
    settings = settings_from(parse_space(SPACE, source="tinyw.yaml"), profile=Profile())
    study = open_study(settings, open_storage(url), name, n_trials=n_trials)
    study.set_user_attr(TARGET, n_trials)
    return name


def _worker(url: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
    """A worker that gets the storage URL from the environment (it may hold a password)."""
    cmd = [sys.executable, "-m", "archsearch", "worker", "--study", name]
    cmd += ["--threads", "1", "--json", *extra]
    env = {**os.environ, STORAGE_ENV: url}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()


def _kill_one_mid_trial(url: str, name: str, procs: list[subprocess.Popen[bytes]]) -> int:
    """SIGKILL a worker whose trial has been running for two polls in a row; its number."""
    pids = {p.pid: p for p in procs}
    seen: dict[int, int] = {}
    deadline = time.time() + 180
    while time.time() < deadline:
        running = {}
        for t in _trials(url, name):
            if t.state.name == "RUNNING" and t.user_attrs.get("metrics"):
                pid = int(str(t.user_attrs.get("worker", ":0")).rpartition(":")[2] or 0)
                if pid in pids:
                    running[t.number] = pid
        for number, pid in running.items():
            if seen.get(number) == pid:
                pids[pid].send_signal(signal.SIGKILL)
                pids[pid].wait()
                return number
        seen = running
        time.sleep(0.4)
    pytest.fail("no worker was ever caught mid-trial")


def _check_done(url: str, name: str, n_trials: int, killed: int) -> None:
    trials = _trials(url, name)
    finished = [t for t in trials if t.user_attrs.get("outcome") in FINISHED]
    assert len(finished) == n_trials  # all requested trials, no more
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    dead = trials[killed]
    assert dead.state.name == "FAIL" and dead.user_attrs.get("outcome") != "complete"
    reruns = [t for t in finished if t.user_attrs.get("retry_of") == killed]
    assert len(reruns) == 1 and reruns[0].params == dead.params  # re-run once, same model
    # no finished trial was run twice: at most one finished trial per retried trial
    retried = [t.user_attrs.get("retry_of") for t in finished if t.user_attrs.get("retry_of")]
    assert len(retried) == len(set(retried))
    # no rung judged twice in one trial
    for t in finished:
        rungs = [f["rung"] for f in t.user_attrs.get("fidelity") or []]
        assert len(rungs) == len(set(rungs))


def test_journal_two_workers_one_killed(tmp_path):
    url = f"journal:{tmp_path / 'study.journal'}"
    name = _create(url, 6)
    procs = [_worker(url, name), _worker(url, name)]
    try:
        killed = _kill_one_mid_trial(url, name, procs)
        survivor = next(p for p in procs if p.returncode is None)
        _, err = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    # the survivor (same machine) saw the dead worker's process gone and re-ran its trial
    _check_done(url, name, 6, killed)


def test_study_recover_then_resume(tmp_path):
    url = f"journal:{tmp_path / 'study.journal'}"
    name = _create(url, 3)
    proc = _worker(url, name)
    try:
        killed = _kill_one_mid_trial(url, name, [proc])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _trials(url, name)[killed].state.name == "RUNNING"  # a journal has no heartbeat
    base = [sys.executable, "-m", "archsearch", "study", "recover", "--storage", url]
    r = subprocess.run([*base, "--study", name, "--json"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert f'"recovered": [\n    {killed}\n  ]' in r.stdout.decode()
    r = subprocess.run([*base, "--study", "nope"], capture_output=True, timeout=60)
    assert r.returncode == 2 and b"--study" in r.stderr and b"Traceback" not in r.stderr
    res = _worker(url, name)
    _, err = res.communicate(timeout=300)
    assert res.returncode == 0, err.decode()
    _check_done(url, name, 3, killed)


def test_workers_refuse_sqlite(tmp_path):
    space = tmp_path / "tinyw.yaml"
    space.write_text(SPACE)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "archsearch",
            "search",
            str(space),
            "--workers",
            "2",
            "-n",
            "2",
            "--storage",
            str(tmp_path / "x.db"),
        ],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 2 and b"SQLite is not safe" in r.stderr


@NEEDS_PG
def test_postgres_four_workers_one_killed():
    assert PG, "CI must provide a PostgreSQL server (ARCHSEARCH_TEST_POSTGRES)"
    name = _create(PG, 10)
    procs = [_worker(PG, name, "--heartbeat", "1") for _ in range(4)]
    try:
        killed = _kill_one_mid_trial(PG, name, procs)
        for p in procs:
            if p.returncode is None:
                _, err = p.communicate(timeout=600)
                assert p.returncode == 0, redact(err.decode())
        _check_done(PG, name, 10, killed)
        dead = _trials(PG, name)[killed]
        # Optuna's heartbeat failed it (no archsearch recovery on heartbeat storages)
        assert dead.user_attrs.get("outcome") is None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        optuna.delete_study(study_name=name, storage=open_storage(PG))


def test_search_with_two_workers_ends_in_a_report(tmp_path):
    space = tmp_path / "tinyw.yaml"
    space.write_text(SPACE)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "archsearch", "search", str(space), "--workers", "2", "-n", "4"]
    r = subprocess.run([*cmd, "-o", str(out), "--json"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    res = json.loads(r.stdout)
    assert res["storage"] == f"journal:{out.resolve() / 'study.journal'}"
    assert res["finished"] == 4 and res["worker_exit_codes"] == [0, 0]
    assert res["threads_per_worker"] >= 1
    assert (out / "report" / "pareto.png").stat().st_size > 0
    for i in (0, 1):  # each worker ran on the study and saw it finished
        log = (out / f"worker-{i}.log").read_text()
        summary = json.JSONDecoder().raw_decode(log[log.index("{") :])[0]
        assert summary["study"] == "tinyw" and summary["finished"] == 4


def _password(url: str) -> str:
    userinfo = url.partition("://")[2].rpartition("@")[0]
    return userinfo.partition(":")[2]


def _children_cmdlines(parent: int) -> list[bytes]:
    """The command lines of ``parent``'s child processes."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    ppid = int(f.read().rpartition(b")")[2].split()[1])
                if ppid == parent:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        out.append(f.read())
            except (OSError, ValueError, IndexError):
                continue
    return out


@NEEDS_PG
def test_search_with_workers_never_shows_the_password(tmp_path):
    """``search --workers 2`` on a PostgreSQL URL with a password: the password is in no file
    under the output folder, no output line, and no process's command line while it runs."""
    assert PG, "CI must provide a PostgreSQL server (ARCHSEARCH_TEST_POSTGRES)"
    secret = _password(PG)
    assert len(secret) >= 8, "scripts/postgres.sh gives the study role a password"
    space = tmp_path / "tinyw.yaml"
    space.write_text(SPACE)
    out = tmp_path / "run"
    name = f"tinyw-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "archsearch", "search", str(space), "--workers", "2", "-n", "2"]
    cmd += ["--storage", PG, "--study", name, "-o", str(out), "--json", "--budget-tokens", "8000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen_workers = 0
    try:
        while proc.poll() is None:
            lines = [c for c in _children_cmdlines(proc.pid) if b"archsearch\x00worker" in c]
            seen_workers = max(seen_workers, len(lines))
            assert not any(secret.encode() in c for c in lines)
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, redact(stderr.decode())
        assert seen_workers == 2
        assert secret.encode() not in stdout + stderr
        assert json.loads(stdout)["storage"] == redact(PG)
        files = [p for p in out.rglob("*") if p.is_file()]
        assert any(p.name == "report.md" for p in files)
        leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
        assert not leaked
        assert ":***@" in (out / "report" / "report.md").read_text()  # "Made by" redacted
    finally:
        if proc.poll() is None:
            proc.kill()
        optuna.delete_study(study_name=name, storage=open_storage(PG))
