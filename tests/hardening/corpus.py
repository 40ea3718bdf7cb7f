"""The malformed-input corpus: cases, their collection, and the worker that runs them.

A case is ``archsearch ARGV`` run in a fresh temporary folder holding ``files``, with ``env`` set.
It passes when it exits with status 2 and prints exactly one line on stderr, starting with
``error: `` (and containing ``expect`` when given), with no traceback, within the time and memory
bounds below.

Cases come from every ``cases_*.py`` module next to this file. Each is importable on its own (the
tests folder is not a package) and defines ``def cases() -> list[dict]`` returning plain dicts::

    {"id": str, "cls": int, "argv": [...], "files": {relpath: str | bytes},
     "env": {...}, "expect": str | None}

``{tmp}`` inside argv, env values, file names and file texts becomes the case's temporary folder.

Running ~250 fresh interpreters (each importing torch) would take minutes, so the runner starts a
few long-lived workers (``python corpus.py --worker``) that import archsearch once and then fork a
child per case: the child gets its own folder, environment, stdout/stderr files, an address-space
limit (``RLIMIT_AS``: its size at the fork plus ``MEMORY_BOUND``) and ``signal.alarm`` (default
action: the kernel kills it, even inside C code) for ``TIME_BOUND``. The child runs the CLI's own
``main()`` in-process, so the real ``SystemExit`` code is what is checked.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gc
import importlib.util
import json
import os
import queue
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TIME_BOUND = 20  # seconds per case
E2E_TIME_BOUND = TIME_BOUND + 15  # a cold interpreter also imports torch
MEMORY_BOUND = 1 << 30  # bytes of address space a case may add
CLASSES = {
    1: "YAML layer",
    2: "validation",
    3: "rich markup in names",
    4: "CLI layer",
    5: "output paths",
    6: "storage faults",
    7: "credentials",
    8: "throwaway PostgreSQL",
    9: "CIFAR batches",
}
#: modules the project's corpus is made of; classes each is expected to cover
MODULES = {
    "cases_yaml": {1},
    "cases_validation": {2},
    "cases_cli": {4},
    "cases_markup": {3},
    "cases_paths": {5},
    "cases_storage": {6},
    "cases_credentials": {7},
    "cases_cifar": {9},
}


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    cls: int
    argv: tuple[str, ...]
    files: dict[str, str | bytes] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    expect: str | None = None
    module: str = ""

    @staticmethod
    def from_dict(d: dict[str, Any], module: str) -> Case:
        unknown = set(d) - {"id", "cls", "argv", "files", "env", "expect"}
        if unknown:
            raise ValueError(f"{module}: case {d.get('id')!r} has unknown keys {sorted(unknown)}")
        case = Case(
            id=str(d["id"]),
            cls=int(d["cls"]),
            argv=tuple(str(a) for a in d["argv"]),
            files=dict(d.get("files") or {}),
            env={str(k): str(v) for k, v in (d.get("env") or {}).items()},
            expect=d.get("expect"),
            module=module,
        )
        if case.cls not in CLASSES:
            raise ValueError(f"{module}: case {case.id!r} has class {case.cls}, not 1-9")
        return case

    def to_wire(self) -> dict[str, Any]:
        files = {
            k: {"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else {"text": v}
            for k, v in self.files.items()
        }
        return {"id": self.id, "argv": list(self.argv), "files": files, "env": self.env}


def module_paths() -> list[Path]:
    return sorted(HERE.glob("cases_*.py"))


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_hardening_{path.stem}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_cases() -> list[Case]:
    """Every case of every ``cases_*.py``; ids are unique across the corpus."""
    out: list[Case] = []
    seen: dict[str, str] = {}
    for path in module_paths():
        for d in _import(path).cases():
            case = Case.from_dict(d, path.stem)
            if case.id in seen:
                raise ValueError(f"case id {case.id!r} in {path.stem} and {seen[case.id]}")
            seen[case.id] = path.stem
            out.append(case)
    return out


# ---------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass
class Result:
    id: str
    status: str  # "exit" | "timeout" | "killed" | "crash"
    code: Any = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    grew_bytes: int = 0

    def problems(self, case: Case, time_bound: float = TIME_BOUND) -> list[str]:
        """Why this result breaks the corpus contract (empty when it holds)."""
        out: list[str] = []
        if self.status != "exit":
            out.append(f"ended by {self.status} after {self.seconds:.1f} s")
        elif self.code != 2:
            out.append(f"exit status {self.code!r}, not 2")
        lines = self.stderr.splitlines()
        if len(lines) != 1:
            out.append(f"{len(lines)} lines on stderr, not 1")
        elif not lines[0].startswith("error: "):
            out.append("the stderr line does not start with 'error: '")
        if "Traceback" in self.stderr or "Traceback" in self.stdout:
            out.append("a traceback was printed")
        if case.expect is not None and case.expect not in self.stderr:
            out.append(f"{case.expect!r} not in the error line")
        if self.seconds > time_bound:
            out.append(f"took {self.seconds:.1f} s > {time_bound} s")
        if self.grew_bytes > MEMORY_BOUND:
            out.append(f"grew by {self.grew_bytes / 2**20:.0f} MiB")
        return out

    def explain(self, case: Case, time_bound: float = TIME_BOUND) -> str:
        shown = self.stderr[-3000:]
        why = "; ".join(self.problems(case, time_bound))
        return (
            f"case {case.id} (class {case.cls}, {case.module}): {why}\n"
            f"argv: archsearch {' '.join(case.argv)}\nstderr:\n{shown}"
        )


# ---------------------------------------------------------------------------------------------
# the worker side (runs in ``python corpus.py --worker``)


def _sub(text: str, tmp: str) -> str:
    return text.replace("{tmp}", tmp)


def write_files(files: dict[str, Any], tmp: str) -> None:
    for rel, spec in files.items():
        p = Path(tmp) / _sub(rel, tmp)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, bytes):
            data = spec.replace(b"{tmp}", tmp.encode())
        elif isinstance(spec, str):
            data = _sub(spec, tmp).encode()
        elif "b64" in spec:
            data = base64.b64decode(spec["b64"]).replace(b"{tmp}", tmp.encode())
        else:
            data = _sub(spec["text"], tmp).encode()
        p.write_bytes(data)


def _vm_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _child(wire: dict[str, Any], tmp: str) -> None:
    """In the forked child: set up, run the CLI, write result.json; never returns."""
    code: Any = None
    try:
        out_fd = os.open(os.path.join(tmp, ".stdout"), os.O_WRONLY | os.O_CREAT, 0o600)
        err_fd = os.open(os.path.join(tmp, ".stderr"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        signal.alarm(TIME_BOUND)  # default action: terminate
        limit = _vm_bytes("VmSize") + MEMORY_BOUND
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        start_rss = _vm_bytes("VmRSS")
        os.chdir(tmp)
        os.environ.update({k: _sub(v, tmp) for k, v in wire["env"].items()})
        sys.argv = ["archsearch", *(_sub(a, tmp) for a in wire["argv"])]
        from archsearch.cli import main

        try:
            main()
            code = 0
        except SystemExit as e:
            code = 0 if e.code is None else e.code
            if isinstance(code, str):
                sys.stderr.write(code + "\n")
                code = 1
        except BaseException:
            traceback.print_exc()
            code = "exception"
        sys.stdout.flush()
        sys.stderr.flush()
        grew = max(0, _vm_bytes("VmHWM") - start_rss)
        with open(os.path.join(tmp, ".result"), "w") as f:
            json.dump({"code": code, "grew": grew}, f)
    finally:
        os._exit(0)


def run_in_child(wire: dict[str, Any]) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="hardening-")
    try:
        write_files(wire["files"], tmp)
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(wire, tmp)
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - t0
        out = {"id": wire["id"], "seconds": seconds, "status": "exit", "code": None, "grew": 0}
        for name in ("stdout", "stderr"):
            p = Path(tmp) / f".{name}"
            out[name] = p.read_text(errors="replace") if p.exists() else ""
        res = Path(tmp) / ".result"
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            out["status"] = "timeout" if sig == signal.SIGALRM else f"killed by signal {sig}"
        elif res.exists():
            out.update(json.loads(res.read_text()))
        else:
            out["status"] = "crash (no result written)"
        return out
    finally:
        remove_tree(tmp)


def remove_tree(path: str) -> None:
    def onerror(func: Any, p: str, _exc: Any) -> None:
        for q in (os.path.dirname(p), p):
            with contextlib.suppress(OSError):
                os.chmod(q, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            func(p)

    shutil.rmtree(path, onerror=onerror)


def preload() -> None:
    """Import what the commands import lazily, once, so each forked case starts warm."""
    import importlib

    for name in (
        "archsearch.cli",
        "torch",
        "archsearch.model",
        "archsearch.profiling.runner",
        "archsearch.profiling.profiles",
        "archsearch.quality.train",
        "archsearch.quality.tasks",
        "archsearch.search.space",
        "archsearch.search.study",
        "archsearch.search.run",
        "archsearch.search.report",
        "optuna",
        "pandas",
    ):
        with contextlib.suppress(Exception):  # a missing optional library: the case imports it
            importlib.import_module(name)


def worker_main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    sys.path.insert(0, str(ROOT))
    preload()
    gc.collect()
    gc.freeze()  # the children's collections then skip (and do not copy) the preloaded objects
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        proto.write(json.dumps(run_in_child(json.loads(line))) + "\n")


# ---------------------------------------------------------------------------------------------
# the runner side (pytest)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLUMNS"] = "100"
    env.pop("ARCHSEARCH_TEST_POSTGRES", None)
    return env


def run_cases(cases: list[Case], workers: int = 2) -> dict[str, Result]:
    """Run ``cases`` on ``workers`` long-lived worker processes; results by case id."""
    todo: queue.Queue[Case] = queue.Queue()
    for c in cases:
        todo.put(c)
    results: dict[str, Result] = {}
    errors: list[str] = []

    def serve() -> None:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "corpus.py"), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_env(),
            cwd=str(ROOT),
        )
        assert proc.stdin and proc.stdout
        try:
            if "ready" not in json.loads(proc.stdout.readline() or "{}"):
                errors.append("a corpus worker did not start")
                return
            while True:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                proc.stdin.write(json.dumps(case.to_wire()) + "\n")
                proc.stdin.flush()
                reply = proc.stdout.readline()
                if not reply:
                    errors.append(f"the corpus worker died on case {case.id}")
                    return
                r = json.loads(reply)
                results[case.id] = Result(
                    id=case.id,
                    status=r["status"],
                    code=r.get("code"),
                    stdout=r.get("stdout", ""),
                    stderr=r.get("stderr", ""),
                    seconds=r["seconds"],
                    grew_bytes=r.get("grew", 0),
                )
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)

    threads = [threading.Thread(target=serve) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return results


def run_end_to_end(case: Case) -> Result:
    """The case through a real ``python -m archsearch`` process."""
    tmp = tempfile.mkdtemp(prefix="hardening-e2e-")
    try:
        write_files(case.to_wire()["files"], tmp)
        env = _env()
        env.update({k: _sub(v, tmp) for k, v in case.env.items()})
        argv = [_sub(a, tmp) for a in case.argv]
        t0 = time.monotonic()
        try:
            p = subprocess.run(
                [sys.executable, "-m", "archsearch", *argv],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=E2E_TIME_BOUND,
            )
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else ""
            return Result(case.id, "timeout", seconds=time.monotonic() - t0, stderr=err or "")
        return Result(
            case.id, "exit", p.returncode, p.stdout, p.stderr, seconds=time.monotonic() - t0
        )
    finally:
        remove_tree(tmp)


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker_main()
    else:  # a quick look: python tests/hardening/corpus.py [ID-substring...]
        wanted = sys.argv[1:]
        chosen = [c for c in load_cases() if not wanted or any(w in c.id for w in wanted)]
        for cid, res in sorted(run_cases(chosen).items()):
            case = next(c for c in chosen if c.id == cid)
            mark = "ok  " if not res.problems(case) else "FAIL"
            print(f"{mark} {cid:50s} {res.seconds:5.1f}s {res.stderr.strip()[:150]!r}")
