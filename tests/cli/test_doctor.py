"""``archsearch doctor`` (one line per check, ``--json``, exit 1 on a failed check) and shell
completion (typer's ``--install-completion`` / ``--show-completion``)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import shellingham
import torch
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.cli.doctor import check_devices, check_torch

runner = CliRunner()
CHECKS = [
    "python",
    "archsearch",
    "torch",
    "devices",
    "optuna",
    "fvcore",
    "threads",
    "calibration",
    "profiles",
    "spaces",
    "sqlite",
    "psycopg",
    "output",
]


def test_doctor_json_has_every_check_and_passes_here(tmp_path: Path) -> None:
    r = runner.invoke(app, ["doctor", "--json", "-o", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [c["check"] for c in got["checks"]] == CHECKS
    assert got["status"] in ("ok", "warn")
    by = {c["check"]: c for c in got["checks"]}
    assert all(c["status"] in ("ok", "warn") and c["detail"] for c in got["checks"])
    assert "cpu" in by["profiles"]["detail"] and "quickstart" in by["spaces"]["detail"]
    assert by["output"]["detail"] == f"{tmp_path / 'runs'} can be created"
    assert by["sqlite"]["detail"].startswith("SQLite 3.")


def test_doctor_prints_one_line_per_check(tmp_path: Path) -> None:
    r = runner.invoke(app, ["doctor", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [line.split()[1] for line in lines] == CHECKS
    assert all(line.split()[0] in ("ok", "warn") for line in lines)
    assert lines[-1].split(None, 2)[2] == f"{tmp_path} writable"


def test_doctor_fails_with_exit_1_on_an_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = runner.invoke(app, ["doctor", "--json", "-o", str(blocker / "runs")])
    assert r.exit_code == 1
    got = json.loads(r.stdout)
    output = got["checks"][-1]
    assert got["status"] == "fail" and output["status"] == "fail"
    assert output["detail"] == f"{blocker / 'runs'}: not writable ({blocker} is not a folder)"
    r = runner.invoke(app, ["doctor", "-o", str(blocker / "runs")])
    assert r.exit_code == 1 and r.stdout.splitlines()[-1].startswith("fail  output")


def test_show_completion_prints_a_bash_script(monkeypatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/bash")
    monkeypatch.setattr(shellingham, "detect_shell", lambda *a, **k: ("bash", "/bin/bash"))
    r = runner.invoke(app, ["--show-completion"], prog_name="archsearch")
    assert r.exit_code == 0, r.output
    assert "_ARCHSEARCH_COMPLETE=complete_bash" in r.stdout
    assert "complete -o default -F _archsearch_completion archsearch" in r.stdout
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout


def test_completion_completes_commands_and_options() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {
            "_ARCHSEARCH_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
        r = runner.invoke(app, [], prog_name="archsearch", env=env)
        assert r.exit_code == 0, r.output
        return r.stdout.split()

    assert complete("archsearch doc", 1) == ["doctor"]
    assert complete("archsearch doctor --j", 2) == ["--json"]
    assert "quickstart" in complete("archsearch q", 1)


def test_doctor_lists_gpus_with_names_and_memory(monkeypatch) -> None:
    """The CUDA branch, on a CPU machine: torch's CUDA queries stand in for a one-GPU host."""
    props = types.SimpleNamespace(name="NVIDIA H200", total_memory=140 * 2**30)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    assert check_torch()["detail"].endswith("(CUDA 12.4 build)")
    got = check_devices()
    assert got["status"] == "ok" and got["detail"].endswith("; cuda:0: NVIDIA H200, 140.0 GiB")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_devices()["status"] == "warn"
