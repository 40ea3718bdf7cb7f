"""Rich markup in user text (class 3): model, space and file names such as ``[/]`` or
``[bold red]x[/]``, which rich would read as markup (and crash on), in every command that
prints them. Each case then meets a real error (a bad option, an existing output, a bad mixer)
and must end in one ``error:`` line with exit status 2, not a markup traceback.

Generated: names crossed with the commands that print or use them. ``{tmp}`` is the case's
temporary folder. Runs that succeed with such names are in tests/cli/test_hardening_cli.py."""

from __future__ import annotations

import json

NAMES = [
    "[/]",
    "[bold red]x[/]",
    "[link=https://example.invalid]x[/link]",
    "[",
    "a]b[c",
    "[/bold]",
    "\\[x]",
    "[[/]]",
]


def model(name: str, kind: str = "softmax") -> str:
    return (
        f"name: {json.dumps(name)}\nd_model: 16\nvocab_size: 256\nmax_seq_len: 32\n"
        f"pos_encoding: rope\nlayers:\n  - {{repeat: 2, mixer: {{kind: {json.dumps(kind)}, "
        "n_heads: 2}}\n"
    )


def space(name: str) -> str:
    return (
        f"version: 1\nname: {json.dumps(name)}\nseq_len: 32\n"
        "fixed: {vocab_size: 256, max_seq_len: 32}\n"
        "params:\n  d_model: {choices: [16]}\n  n_layers: {low: 1, high: 2}\n"
        "layers:\n  mix: uniform\n  mixer:\n    softmax: {n_heads: {choices: [2]}}\n"
        "objectives:\n  - {metric: bits_per_byte, direction: minimize}\n"
        "  - {metric: flops_fwd, direction: minimize}\n"
        "task: {name: lm, options: {eval_tokens: 512}}\n"
        "train: {budget_tokens: 4000, batch_size: 2, evals: 1, halving: {eta: 2, rungs: 1}}\n"
    )


M = "{tmp}/m.yaml"


def _scenarios(name: str) -> list[tuple[str, list[str], dict, str | None]]:
    m = {"m.yaml": model(name)}
    return [
        ("build-bad-length", ["build", M, "-T", "abc"], m, "seq_len"),
        ("train-unknown-task", ["train", M, "--task", "nope", "--budget-steps", "1"], m, "nope"),
        (
            "train-existing-result",
            ["train", M, "-o", "{tmp}/out", "--budget-steps", "1"],
            {**m, "out/result.json": "{}"},
            "--force",
        ),
        (
            "profile-existing-csv",
            ["profile", M, "--csv", "{tmp}/p.csv"],
            {**m, "p.csv": "x\n"},
            "--csv",
        ),
        (
            "scale-existing-report",
            ["scale", M, "-o", "{tmp}/sc", "-L", "32"],
            {**m, "sc/scaling.csv": "x\n"},
            "--force",
        ),
        ("mixer-kind", ["build", M], {"m.yaml": model("ok", kind=name)}, "kind"),
        ("missing-file", ["build", "{tmp}/" + name.replace("/", "_") + ".yaml"], {}, None),
    ]


def cases() -> list[dict]:
    out = []
    for i, name in enumerate(NAMES):
        for what, argv, files, expect in _scenarios(name):
            out.append(
                {
                    "id": f"markup-{i}-{what}",
                    "cls": 3,
                    "argv": argv,
                    "files": files,
                    "env": {},
                    "expect": expect,
                }
            )
    for i, name in enumerate(NAMES[:3]):
        out.append(
            {
                "id": f"markup-{i}-search-out-is-a-file",
                "cls": 3,
                "argv": ["search", "{tmp}/s.yaml", "-o", "{tmp}/afile", "--json"],
                "files": {"s.yaml": space(name), "afile": "not a folder\n"},
                "env": {},
                "expect": "--out",
            }
        )
    return out
