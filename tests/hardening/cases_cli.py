"""Malformed command lines (class 4): bad option values, numbers out of bounds (nan, inf,
negative, huge), missing arguments and values, unknown options and commands. Every case must
end in one ``error:`` line with exit status 2, before any model is built or trained.

Generated: each command's numeric options crossed with values they refuse, plus the click
usage errors of every command. ``{tmp}`` is the case's temporary folder."""

from __future__ import annotations

from pathlib import Path

SPEC = str(Path(__file__).resolve().parents[2] / "reports" / "claims" / "claims.yaml")

MODEL = (
    "name: tiny\nd_model: 16\nvocab_size: 256\nmax_seq_len: 32\npos_encoding: rope\n"
    "layers:\n  - {repeat: 2, mixer: {kind: softmax, n_heads: 2}}\n"
)
FILES = {"m.yaml": MODEL}
M = "{tmp}/m.yaml"

NOT_NUMBERS = ["abc", "", "1O", "0x10", "--", "1,5"]
NOT_FINITE = ["nan", "inf", "-inf", "NaN", "+inf"]

#: (command words before the option, option, values it must refuse)
NUMERIC = [
    (["search", "quickstart"], "--trials", ["0", "-1", "100001", "1e3", "2.5", *NOT_NUMBERS]),
    (["search", "quickstart"], "--workers", ["0", "-3", "257", "1.5"]),
    (["search", "quickstart"], "--threads", ["0", "4097"]),
    (["search", "quickstart"], "--seed", ["-1", "2147483648", "99999999999999999999"]),
    (["search", "quickstart"], "--eta", ["1", "0"]),
    (["search", "quickstart"], "--rungs", ["0", "7"]),
    (["search", "quickstart"], "--front-seeds", ["-1", "101"]),
    (["search", "quickstart"], "--timeout", ["0", "-5", *NOT_FINITE]),
    (["train", M], "--lr", ["0", "-1e-3", "11", *NOT_FINITE, *NOT_NUMBERS]),
    (["train", M], "--warmup", ["-0.1", "1.5", "nan", "inf"]),
    (["train", M], "--budget-seconds", ["0", "-1", "nan", "inf", "1e300"]),
    (["train", M], "--budget-steps", ["0", "-1", "1000000001"]),
    (["train", M], "--batch-size", ["0", "-2", "65537"]),
    (["train", M], "--evals", ["-1", "1000001"]),
    (["train", M], "--seq-len", ["0", "-32", "16777217"]),
    (["train", M], "--eval-stride", ["0", "-1"]),
    (["train", M], "--seed", ["-1", "2147483648"]),
    (["compare", M], "--seeds", ["0", "101"]),
    (["compare", M], "--lr", ["nan", "0"]),
    (["compare", M], "--batch-size", ["0"]),
    (["claims"], "--workers", ["0", "65", "1.5"]),
    (["claims"], "--threads", ["0", "1025"]),
    (["quickstart"], "--trials", ["0", "100001"]),
    (["quickstart"], "--seed", ["-1"]),
    (["worker", "--storage", "{tmp}/s.db", "--study", "x"], "--heartbeat", ["0", "86401"]),
    (["worker", "--storage", "{tmp}/s.db", "--study", "x"], "--trials", ["0"]),
    (["worker", "--storage", "{tmp}/s.db", "--study", "x"], "--threads", ["0"]),
]
#: options parsed by archsearch itself (counts and FLOPs with k/m/g suffixes)
COUNTS = [
    (["train", M], "--budget-tokens", ["inf", "nan", "-1", "0", "abc", "1.5", "-inf"]),
    (["train", M], "--budget-flops", ["inf", "nan", "-1", "0", "abc"]),
    (["search", "quickstart"], "--budget-tokens", ["inf", "nan", "-1", "0", "x"]),
    (["search", "quickstart"], "--budget-flops", ["nan", "-3e13", "0"]),
    (["compare", M], "--budget-tokens", ["nan", "-1"]),
    (["build", M], "-T", ["0", "-1", "abc", "k", "1.5k"]),
]
COMMANDS = {
    "build": [M],
    "profile": [M],
    "scale": [M],
    "train": [M],
    "search": ["quickstart"],
    "compare": [M],
    "report": ["{tmp}"],
    "claims": [],
    "quickstart": [],
    "mixers": [],
    "families": [],
    "worker": ["--storage", "{tmp}/s.db", "--study", "x"],
}


def _case(cid: str, argv: list[str], expect: str | None) -> dict:
    return {"id": cid, "cls": 4, "argv": argv, "files": FILES, "env": {}, "expect": expect}


def _numeric() -> list[dict]:
    out = []
    for words, opt, values in NUMERIC:
        for v in dict.fromkeys([*values, "abc"]):
            cid = f"cli-{words[0]}{opt}={v or 'empty'}"
            out.append(_case(cid, [*words, opt, v], opt.lstrip("-")))
    for words, opt, values in COUNTS:
        for v in values:
            out.append(_case(f"cli-{words[0]}{opt}={v}", [*words, opt, v], None))
    return out


def _usage() -> list[dict]:
    out = []
    for cmd, args in COMMANDS.items():
        out.append(_case(f"cli-{cmd}-unknown-option", [cmd, *args, "--no-such-option"], "--no"))
        out.append(_case(f"cli-{cmd}-unknown-short", [cmd, *args, "-Z"], "-Z"))
        out.append(_case(f"cli-{cmd}-json-value", [cmd, *args, "--json=yes"], "--json"))
    for cmd in ("build", "profile", "train", "search", "compare", "report"):
        out.append(_case(f"cli-{cmd}-missing-argument", [cmd], "missing"))
    for cmd, opt in (("build", "-T"), ("train", "--lr"), ("profile", "--csv"), ("scale", "-L")):
        out.append(_case(f"cli-{cmd}-{opt}-without-value", [cmd, M, opt], opt))
    out += [
        _case("cli-worker-missing-storage", ["worker", "--study", "x"], "--storage"),
        _case("cli-worker-missing-study", ["worker", "--storage", "x.db"], "--study"),
        _case("cli-recover-missing-storage", ["study", "recover", "--study", "x"], "--storage"),
        _case("cli-build-set-no-equals", ["build", M, "--set", "d_model"], "--set"),
        _case("cli-build-set-bad-index", ["build", M, "--set", "layers.9.mlp_ratio=2"], "--set"),
        _case("cli-train-set-bad-value", ["train", M, "--set", "d_model=-5"], "d_model"),
        _case("cli-build-set-bad-yaml", ["build", M, "--set", "name=[x"], "--set"),
        _case("cli-claims-missing-spec", ["claims", "--spec", "{tmp}/none.yaml"], "--spec"),
        _case("cli-claims-unknown-scale", ["claims", "--spec", SPEC, "--scale", "tpu"], "--scale"),
        _case(
            "cli-claims-report-only-empty",
            ["claims", "--spec", SPEC, "--report-only", "-o", "{tmp}"],
            "--out",
        ),
        _case("cli-unknown-command", ["nope"], "no such command"),
        _case("cli-typo-command", ["buidl", M], "no such command"),
        _case("cli-study-unknown-subcommand", ["study", "nope"], "no such command"),
        _case("cli-root-unknown-option", ["--nope"], "--nope"),
        _case("cli-build-extra-argument", ["build", M, M], "unexpected extra argument"),
        _case("cli-report-extra-argument", ["report", "{tmp}", "{tmp}", "{tmp}"], "unexpected"),
        _case("cli-newline-in-value", ["build", M, "-T", "1\n2"], None),
        _case("cli-newline-in-command", ["no\nsuch"], "no such command"),
        _case("cli-escape-in-option", ["build", M, "--\x1b[31mred"], None),
        _case(
            "cli-budget-both", ["train", M, "--budget-flops", "1e9", "--budget-steps", "2"], None
        ),
    ]
    return out


def cases() -> list[dict]:
    return _numeric() + _usage()
