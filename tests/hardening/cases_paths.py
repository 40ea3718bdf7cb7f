"""Output paths (class 5): -o/--out/--csv that cannot be written (under a file, under
/dev/null, in /proc), a file where a folder is wanted, and outputs of an earlier or another
run that a command must not replace without --force. Each case must end in one ``error:``
line with exit status 2 before anything is built or trained.

Generated: each output option crossed with each unwritable target, plus the overwrite rule per
command. ``{tmp}`` is the case's temporary folder."""

from __future__ import annotations

import json

MODEL = (
    "name: tiny\nd_model: 16\nvocab_size: 256\nmax_seq_len: 32\npos_encoding: rope\n"
    "layers:\n  - {repeat: 2, mixer: {kind: softmax, n_heads: 2}}\n"
)
SPACE = (
    "version: 1\nname: tinyspace\nseq_len: 32\nfixed: {vocab_size: 256, max_seq_len: 32}\n"
    "params:\n  d_model: {choices: [16]}\n  n_layers: {low: 1, high: 2}\n"
    "layers:\n  mix: uniform\n  mixer:\n    softmax: {n_heads: {choices: [2]}}\n"
    "objectives:\n  - {metric: bits_per_byte, direction: minimize}\n"
    "  - {metric: flops_fwd, direction: minimize}\n"
    "task: {name: lm, options: {eval_tokens: 512}}\n"
    "train: {budget_tokens: 4000, batch_size: 2, evals: 1, halving: {eta: 2, rungs: 1}}\n"
)
FILES = {"m.yaml": MODEL, "s.yaml": SPACE, "afile": "a file, not a folder\n"}
M, S = "{tmp}/m.yaml", "{tmp}/s.yaml"


def saved_report(study: str) -> dict[str, str]:
    """The files of a saved report folder of ``study`` (enough to be recognised as one)."""
    return {"trials.csv": "number,state\r\n", "study.json": json.dumps({"study": study})}


#: folders no one can write: under a file, under a device, in a filesystem without files
UNWRITABLE_DIRS = ["{tmp}/afile", "{tmp}/afile/sub", "/dev/null/x", "/proc/archsearch-x/y"]
UNWRITABLE_FILES = ["{tmp}/afile/x.csv", "/dev/null/x.csv", "/proc/archsearch-x.csv", "{tmp}"]

#: (id, argv before the output option, output option)
DIR_OPTIONS = [
    ("train", ["train", M, "--budget-steps", "1"], "-o"),
    ("scale", ["scale", M, "-L", "32"], "-o"),
    ("search", ["search", S, "-n", "1"], "-o"),
    ("compare", ["compare", M, "--seeds", "1", "--budget-tokens", "1k"], "-o"),
    ("report", ["report", "{tmp}/rep"], "-o"),
]


def _case(cid: str, argv: list[str], files: dict | None = None, expect: str | None = None) -> dict:
    return {
        "id": f"paths-{cid}",
        "cls": 5,
        "argv": argv,
        "files": {**FILES, **(files or {})},
        "env": {},
        "expect": expect,
    }


def _unwritable() -> list[dict]:
    out = []
    rep = {f"rep/{k}": v for k, v in saved_report("a").items()}
    for cid, argv, opt in DIR_OPTIONS:
        for i, target in enumerate(UNWRITABLE_DIRS):
            out.append(_case(f"{cid}-unwritable-{i}", [*argv, opt, target], rep, "--out"))
    for i, target in enumerate(UNWRITABLE_FILES):
        out.append(
            _case(f"profile-csv-unwritable-{i}", ["profile", M, "--csv", target], None, "--csv")
        )
    return out


def _overwrite() -> list[dict]:
    rep_a = {f"rep/{k}": v for k, v in saved_report("a").items()}
    other = {f"out/{k}": v for k, v in saved_report("b").items()}
    cases = [
        (
            "train-result",
            ["train", M, "--budget-steps", "1", "-o", "{tmp}/out"],
            {"out/result.json": "{}"},
        ),
        (
            "train-curve",
            ["train", M, "--budget-steps", "1", "-o", "{tmp}/out"],
            {"out/curve.csv": "x"},
        ),
        ("scale-csv", ["scale", M, "-L", "32", "-o", "{tmp}/out"], {"out/scaling.csv": "x"}),
        ("scale-summary", ["scale", M, "-L", "32", "-o", "{tmp}/out"], {"out/summary.md": "x"}),
        ("profile-csv", ["profile", M, "--csv", "{tmp}/p.csv"], {"p.csv": "x\n"}),
        ("report-other-study", ["report", "{tmp}/rep", "-o", "{tmp}/out"], {**rep_a, **other}),
        (
            "report-foreign-folder",
            ["report", "{tmp}/rep", "-o", "{tmp}/out"],
            {**rep_a, "out/notes.txt": "mine"},
        ),
        (
            "search-foreign-folder",
            ["search", S, "-n", "1", "-o", "{tmp}/out"],
            {"out/notes.txt": "mine"},
        ),
        ("search-other-study", ["search", S, "-n", "1", "-o", "{tmp}/out"], other),
        (
            "search-other-study-report",
            ["search", S, "-n", "1", "-o", "{tmp}/out"],
            {f"out/report/{k}": v for k, v in saved_report("b").items()},
        ),
        ("search-out-is-file", ["search", S, "-n", "1", "-o", "{tmp}/afile"], None),
    ]
    return [_case(f"overwrite-{cid}", argv, files, None) for cid, argv, files in cases]


def cases() -> list[dict]:
    return _unwritable() + _overwrite()
