"""Class 1 of the hardening corpus: hostile YAML, in every file kind and command that reads YAML.

Each poison (a fragment that no YAML file should get past the loader with) is put into a valid
model config, search space and hardware profile, and read by the commands that load them.
"""

from __future__ import annotations

MODEL = """name: tiny
d_model: 32
vocab_size: 256
max_seq_len: 64
pos_encoding: rope
layers:
  - {repeat: 2, mlp_ratio: 2.0, mixer: {kind: softmax, n_heads: 2}}
"""

SPACE = """version: 1
name: tinyspace
seq_len: 64
fixed: {vocab_size: 256, max_seq_len: 64}
params:
  d_model: {choices: [32]}
  n_layers: {low: 1, high: 2}
layers:
  mixer:
    softmax: {n_heads: 2}
objectives:
  - {metric: bits_per_byte, direction: minimize}
  - {metric: flops_fwd, direction: minimize}
task: {name: lm}
train: {budget_tokens: 1000, batch_size: 2}
"""

PROFILE = """name: p
description: test
device: cpu
dtype: float32
batch_size: 1
warmup: 0
repeats: 1
compile: false
"""


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * width)
        lines.append(f"lol{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _deep_block(levels: int) -> str:
    return (
        "deep:\n"
        + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(levels))
        + ("  " * (levels + 1) + "leaf: 1\n")
    )


# (id, text appended at the end of a valid document, expected substring of the error line)
POISONS: list[tuple[str, str, str]] = [
    ("billion-laughs", _laughs(), "values"),
    ("laughs-wide", _laughs(4, 400), "values"),
    ("recursive-seq", "rec: &r [1, *r]\n", "recursive alias"),
    ("recursive-map", "rec: &r {a: 1, b: *r}\n", "recursive alias"),
    ("recursive-indirect", "rec: &r {a: [{b: *r}]}\n", "recursive alias"),
    ("undefined-alias", "x: *nowhere\n", "alias"),
    ("deep-flow-10k", "deep: " + "[" * 10000 + "]" * 10000 + "\n", "nesting deeper"),
    ("deep-flow-101", "deep: " + "[" * 101 + "]" * 101 + "\n", "nesting deeper"),
    ("deep-flowmap", "deep: " + "{a: " * 500 + "1" + "}" * 500 + "\n", "nesting deeper"),
    ("deep-block", _deep_block(300), "nesting deeper"),
    ("many-values", "big: [" + "1," * 120_000 + "1]\n", "values"),
    ("huge-document", "# " + "x" * (1 << 20) + "\n", "KiB"),
    ("huge-scalar", "blob: " + "y" * (1 << 20) + "\n", "KiB"),
    ("key-no-value", "extra: {kind: softmax, n_heads}\n", "no value"),
    ("set-tag", "extra: !!set {a, b}\n", "tag"),
    ("set-implicit", "extra: {a, b}\n", "no value"),
    ("omap-tag", "extra: !!omap [a: 1, b: 2]\n", "tag"),
    ("pairs-tag", "extra: !!pairs [a: 1]\n", "tag"),
    ("binary-tag", "extra: !!binary aGVsbG8=\n", "tag"),
    ("int-tag-abc", "extra: !!int abc\n", "!!int"),
    ("float-tag-abc", "extra: !!float abc\n", "!!float"),
    ("bool-tag-maybe", "extra: !!bool maybe\n", "!!bool"),
    ("local-tag", "extra: !foo bar\n", "tag"),
    ("local-tag-map", "extra: !thing {a: 1}\n", "tag"),
    ("verbatim-tag", "extra: !<tag:example.com,2000:x> y\n", "tag"),
    ("python-name", "extra: !!python/name:os.system\n", "tag"),
    ("python-apply", "extra: !!python/object/apply:os.system [echo hi]\n", "tag"),
    ("python-name-key", "? !!python/name:os.system\n: 1\n", "tag"),
    ("seq-key", "? [a, b]\n: 1\n", "as a key"),
    ("map-key", "? {a: 1}\n: 1\n", "as a key"),
    ("flow-seq-key", "extra: {[a]: 1}\n", "as a key"),
    ("merge-key", "base: &b {a: 1}\nmerged: {<<: *b, c: 2}\n", "merge"),
    ("tab-indent", "extra:\n\t- 1\n", "well-formed"),
    ("unclosed-flow", "extra: [a, b\n", "well-formed"),
    ("second-document", "---\nother: 1\n", "well-formed"),
    ("bad-indent", "extra:\n  a: 1\n b: 2\n", "well-formed"),
    ("nul-byte", "extra: a\x00b\n", "yaml"),
]


def _prepended() -> list[tuple[str, str, str]]:
    """Poisons that must open the document (directives)."""
    return [
        ("tag-directive", "%TAG !p! tag:yaml.org,2002:python/\n---\n", "PLACE: !p!name:os.system"),
        ("yaml-directive-2", "%YAML 2.0\n---\n", ""),
    ]


#: the poisons also tried in spaces and profiles (the model file gets them all)
SHARED = {
    "billion-laughs",
    "recursive-map",
    "deep-flow-10k",
    "deep-block",
    "many-values",
    "huge-document",
    "key-no-value",
    "set-tag",
    "int-tag-abc",
    "local-tag",
    "python-name-key",
    "seq-key",
    "merge-key",
    "unclosed-flow",
}


def _cases_for(target: str, argv: list[str], name: str, base: str, dup: str) -> list[dict]:
    out: list[dict] = []
    for pid, poison, expect in POISONS:
        if target != "model" and pid not in SHARED:
            continue
        out.append(_case(f"yaml-{target}-{pid}", argv, name, base + poison, expect))
    out.append(_case(f"yaml-{target}-duplicate-key", argv, name, base + dup, "duplicate key"))
    for pid, head, tail in _prepended() if target == "model" else _prepended()[:1]:
        text = head + base + tail.replace("PLACE", "extra")
        out.append(_case(f"yaml-{target}-{pid}", argv, name, text, "yaml"))
    out.append(
        _case(f"yaml-{target}-not-utf8", argv, name, base.encode() + b"x: \xff\xfe\n", "UTF-8")
    )
    out.append(_case(f"yaml-{target}-utf16", argv, name, base.encode("utf-16"), "UTF-8"))
    return out


def _case(cid: str, argv: list[str], name: str, text: str | bytes, expect: str) -> dict:
    files: dict[str, str | bytes] = {name: text}
    if name != "m.yaml":
        files["m.yaml"] = MODEL
    return {"id": cid, "cls": 1, "argv": argv, "files": files, "expect": expect or None}


def _task_opt_cases() -> list[dict]:
    values = {
        "tag-set": "!!set {a}",
        "python-name": "!!python/name:os.system",
        "int-abc": "!!int abc",
        "recursive": "&r [*r]",
        "deep": "[" * 5000 + "]" * 5000,
        "local-tag": "!x 1",
        "map-key": "{[a]: 1}",
        "no-value": "{a, b}",
    }
    return [
        {
            "id": f"yaml-task-opt-{k}",
            "cls": 1,
            "argv": ["train", "{tmp}/m.yaml", "--task", "lm", "-O", f"eval_tokens={v}"],
            "files": {"m.yaml": MODEL},
            "expect": "--task-opt",
        }
        for k, v in values.items()
    ]


def cases() -> list[dict]:
    out: list[dict] = []
    out += _cases_for(
        "model", ["build", "{tmp}/m.yaml", "--no-count"], "m.yaml", MODEL, "d_model: 64\n"
    )
    out += _cases_for(
        "space", ["search", "{tmp}/s.yaml", "-n", "1"], "s.yaml", SPACE, "seq_len: 128\n"
    )
    prof = ["profile", "{tmp}/m.yaml", "--profile", "{tmp}/p.yaml", "-T", "64"]
    out += _cases_for("profile", prof, "p.yaml", PROFILE, "dtype: float16\n")
    # the same poisons reach the commands that train: refused before any training starts
    for pid, poison, expect in POISONS[:6]:
        argv = ["train", "{tmp}/m.yaml", "--budget-tokens", "1k"]
        out.append(_case(f"yaml-train-{pid}", argv, "m.yaml", MODEL + poison, expect))
        argv = ["compare", "{tmp}/ok.yaml", "{tmp}/m.yaml", "--budget-tokens", "1k"]
        c = _case(f"yaml-compare-{pid}", argv, "m.yaml", MODEL + poison, expect)
        c["files"]["ok.yaml"] = MODEL
        out.append(c)
    out += _task_opt_cases()
    return out
