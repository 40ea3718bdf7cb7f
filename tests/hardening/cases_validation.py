"""Class 2 of the hardening corpus: well-formed YAML whose values the validation must refuse.

Wrong types where a name is expected (lists, mappings), non-finite numbers where an integer is
built, sizes far past the documented bounds, huge ``repeat``/``n_layers``, bad ``halving:`` and
``task:`` sections, unknown keys, and two constraints on one metric.
"""

from __future__ import annotations

from typing import Any

import yaml

MODEL: dict[str, Any] = {
    "name": "tiny",
    "d_model": 32,
    "vocab_size": 256,
    "max_seq_len": 64,
    "pos_encoding": "rope",
    "layers": [{"repeat": 2, "mlp_ratio": 2.0, "mixer": {"kind": "softmax", "n_heads": 2}}],
}

SPACE: dict[str, Any] = {
    "version": 1,
    "name": "tinyspace",
    "seq_len": 64,
    "fixed": {"vocab_size": 256, "max_seq_len": 64},
    "params": {"d_model": {"choices": [32]}, "n_layers": {"low": 1, "high": 2}},
    "layers": {"mixer": {"softmax": {"n_heads": 2}}},
    "objectives": [
        {"metric": "bits_per_byte", "direction": "minimize"},
        {"metric": "flops_fwd", "direction": "minimize"},
    ],
    "task": {"name": "lm"},
    "train": {"budget_tokens": 1000, "batch_size": 2},
}

PROFILE: dict[str, Any] = {
    "name": "p",
    "description": "test",
    "device": "cpu",
    "dtype": "float32",
    "batch_size": 1,
    "warmup": 0,
    "repeats": 1,
    "compile": False,
}

INF, NAN = float("inf"), float("nan")
HUGE = 10**12
BAD_NUMBERS: dict[str, Any] = {
    "inf": INF,
    "neg-inf": -INF,
    "nan": NAN,
    "huge": HUGE,
    "googol": 10**100,
    "zero": 0,
    "negative": -3,
    "list": [1],
    "map": {"a": 1},
    "text": "abc",
    "null": None,
    "bool": True,
}
BAD_NAMES: dict[str, Any] = {
    "list": ["x"],
    "map": {"name": "x"},
    "int": 3,
    "null": None,
}


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _set(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = yaml.safe_load(_dump(base))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _model_case(cid: str, path: tuple[Any, ...], value: Any, cmd: str = "build") -> dict:
    argv = {
        "build": ["build", "{tmp}/m.yaml", "--no-count"],
        "train": ["train", "{tmp}/m.yaml", "--budget-tokens", "1k"],
        "profile": ["profile", "{tmp}/m.yaml", "--profile", "cpu", "-T", "64"],
    }[cmd]
    files = {"m.yaml": _dump(_set(MODEL, path, value))}
    return {"id": cid, "cls": 2, "argv": argv, "files": files}


def _space_case(cid: str, data: dict[str, Any], extra: list[str] | None = None) -> dict:
    argv = ["search", "{tmp}/s.yaml", "-n", "1", *(extra or [])]
    return {"id": cid, "cls": 2, "argv": argv, "files": {"s.yaml": _dump(data)}}


def _model_sizes() -> list[dict]:
    out: list[dict] = []
    fields = {
        "d_model": ("d_model",),
        "vocab": ("vocab_size",),
        "max-seq-len": ("max_seq_len",),
        "mlp-ratio": ("layers", 0, "mlp_ratio"),
        "n-heads": ("layers", 0, "mixer", "n_heads"),
        "repeat": ("layers", 0, "repeat"),
    }
    # every field gets the values that used to slip through; the plain type errors on a few
    for i, (fname, path) in enumerate(fields.items()):
        for vname in ("inf", "nan", "huge", "googol", "zero", "list", "text", "null", "bool")[
            : 9 if i < 2 else 5
        ]:
            out.append(_model_case(f"val-model-{fname}-{vname}", path, BAD_NUMBERS[vname]))
    for vname, value in {"inf": INF, "huge": 10**9}.items():
        out.append(_model_case(f"val-train-d_model-{vname}", ("d_model",), value, "train"))
        out.append(_model_case(f"val-profile-d_model-{vname}", ("d_model",), value, "profile"))
    out.append(_model_case("val-model-rope-theta-inf", ("rope_theta",), INF))
    out.append(_model_case("val-model-init-std-nan", ("init_std",), NAN))
    out.append(_model_case("val-model-dropout-nan", ("dropout",), NAN))
    return out


def _model_names() -> list[dict]:
    out: list[dict] = []
    fields = {
        "kind": ("layers", 0, "mixer", "kind"),
        "family": ("family",),
        "pos-encoding": ("pos_encoding",),
        "norm": ("norm",),
        "name": ("name",),
    }
    for fname, path in fields.items():
        for vname, value in BAD_NAMES.items():
            out.append(_model_case(f"val-model-{fname}-{vname}", path, value))
    out.append(_model_case("val-model-family-kind-list", ("family",), {"kind": ["decoder"]}))
    out.append(_model_case("val-model-mixer-list", ("layers", 0, "mixer"), ["softmax"]))
    out.append(_model_case("val-model-layers-map", ("layers",), {"a": 1}))
    out.append(_model_case("val-model-unknown-key", ("colour",), "red"))
    out.append(_model_case("val-model-list-key-value", ("layers", 0, "extra"), [1, 2]))
    many = [{"mixer": {"kind": "softmax", "n_heads": 2}}] * 20_000
    out.append(_model_case("val-model-20k-layer-items", ("layers",), many))
    return out


def _space_sections() -> list[dict]:
    out: list[dict] = []
    t = ("train",)
    bad_halving = {
        "eta-abc": {"eta": "abc"},
        "eta-inf": {"eta": INF},
        "eta-list": {"eta": [3]},
        "eta-one": {"eta": 1},
        "eta-float": {"eta": 2.5},
        "rungs-huge": {"rungs": 10**6},
        "rungs-nan": {"rungs": NAN},
        "unknown-key": {"eta": 3, "rugns": 2},
        "list": [3, 2],
    }
    for name, value in bad_halving.items():
        out.append(_space_case(f"val-space-halving-{name}", _set(SPACE, (*t, "halving"), value)))
    bad_task = {
        "name-list": {"name": ["lm"]},
        "name-map": {"name": {"x": 1}},
        "name-unknown": {"name": "nope"},
        "options-list": {"name": "lm", "options": [1, 2]},
        "options-str": {"name": "lm", "options": "x"},
        "unknown-key": {"name": "lm", "optoins": {}},
        "option-unknown": {"name": "lm", "options": {"nope": 1}},
        "option-inf": {"name": "lm", "options": {"eval_tokens": INF}},
        "option-list": {"name": "lm", "options": {"eval_tokens": [1]}},
        "list": ["lm"],
    }
    for name, value in bad_task.items():
        out.append(_space_case(f"val-space-task-{name}", _set(SPACE, ("task",), value)))
    bad_train = {
        "budget-inf": ("budget_tokens", INF),
        "budget-nan": ("budget_tokens", NAN),
        "budget-huge": ("budget_tokens", 10**30),
        "batch-inf": ("batch_size", INF),
        "batch-list": ("batch_size", [2]),
        "lr-nan": ("lr", NAN),
        "unknown": ("colour", 1),
    }
    for name, (key, value) in bad_train.items():
        out.append(_space_case(f"val-space-train-{name}", _set(SPACE, (*t, key), value)))
    return out


def _space_values() -> list[dict]:
    out: list[dict] = []
    objs = ("objectives",)
    out.append(_space_case("val-space-metric-list", _set(SPACE, (*objs, 0, "metric"), ["x"])))
    out.append(_space_case("val-space-metric-map", _set(SPACE, (*objs, 0, "metric"), {"a": 1})))
    out.append(_space_case("val-space-direction-list", _set(SPACE, (*objs, 0, "direction"), [1])))
    two = [{"metric": "params", "max": 1000000}, {"metric": "params", "max": 2000000}]
    out.append(_space_case("val-space-two-constraints", _set(SPACE, ("constraints",), two)))
    minmax = [{"metric": "params", "max": 10}, {"metric": "params", "min": 1}]
    out.append(
        _space_case("val-space-two-constraints-minmax", _set(SPACE, ("constraints",), minmax))
    )
    cons = {
        "metric-list": [{"metric": ["params"], "max": 1}],
        "max-inf": [{"metric": "params", "max": INF}],
        "max-nan": [{"metric": "params", "max": NAN}],
        "max-list": [{"metric": "params", "max": [1]}],
        "not-list": {"metric": "params", "max": 1},
    }
    for name, value in cons.items():
        out.append(
            _space_case(f"val-space-constraint-{name}", _set(SPACE, ("constraints",), value))
        )
    params = {
        "d-model-huge": ("d_model", {"choices": [10**9]}),
        "d-model-inf-high": ("d_model", {"low": 32, "high": INF}),
        "d-model-list-choice": ("d_model", {"choices": [[32]]}),
        "n-layers-million": ("n_layers", {"low": 1000000, "high": 2000000}),
        "n-layers-inf": ("n_layers", {"low": 1, "high": INF}),
        "n-layers-nan": ("n_layers", {"low": NAN, "high": 2}),
        "n-layers-list": ("n_layers", [1, 2]),
        "mlp-ratio-inf": ("mlp_ratio", {"choices": [INF]}),
        "unknown-param": ("colour", {"choices": [1]}),
    }
    for name, (key, value) in params.items():
        out.append(_space_case(f"val-space-param-{name}", _set(SPACE, ("params", key), value)))
    mixers = {
        "kind-unknown": {"nope": {}},
        "heads-inf": {"softmax": {"n_heads": INF}},
        "heads-huge": {"softmax": {"n_heads": {"choices": [10**9]}}},
        "heads-list-list": {"softmax": {"n_heads": {"choices": [[2]]}}},
        "mixer-list": ["softmax"],
    }
    for name, value in mixers.items():
        data = _set(SPACE, ("layers", "mixer"), value)
        out.append(_space_case(f"val-space-mixer-{name}", data))
    top = {
        "seq-len-huge": ("seq_len", 10**12),
        "seq-len-inf": ("seq_len", INF),
        "seq-len-list": ("seq_len", [64]),
        "name-list": ("name", ["x"]),
        "version-list": ("version", [1]),
        "fixed-max-seq-huge": ("fixed", {"vocab_size": 256, "max_seq_len": 10**12}),
        "fixed-vocab-huge": ("fixed", {"vocab_size": 10**12, "max_seq_len": 64}),
        "fixed-list": ("fixed", [1]),
        "family-list": ("family", ["decoder"]),
        "unknown-top": ("colour", "red"),
    }
    for name, (key, value) in top.items():
        out.append(_space_case(f"val-space-{name}", _set(SPACE, (key,), value)))
    return out


def _profile_cases() -> list[dict]:
    out: list[dict] = []
    fields = {
        "batch": "batch_size",
        "repeats": "repeats",
        "warmup": "warmup",
        "time-budget": "time_budget_s",
        "memory": "memory_gib",
        "peak": "peak_tflops",
        "latency-max": "latency_max_seq_len",
        "threads": "threads",
    }
    for fname, key in fields.items():
        for vname in ("inf", "huge", "list") if fname != "batch" else ("nan", "negative", "text"):
            data = _set(PROFILE, (key,), BAD_NUMBERS[vname])
            argv = ["profile", "{tmp}/m.yaml", "--profile", "{tmp}/p.yaml", "-T", "64"]
            files = {"m.yaml": _dump(MODEL), "p.yaml": _dump(data)}
            out.append(
                {"id": f"val-profile-{fname}-{vname}", "cls": 2, "argv": argv, "files": files}
            )
    for key, value in {"device": ["cpu"], "dtype": ["float32"], "dtype-bad": "float7"}.items():
        data = _set(PROFILE, (key.split("-")[0],), value)
        argv = ["profile", "{tmp}/m.yaml", "--profile", "{tmp}/p.yaml", "-T", "64"]
        out.append(
            {
                "id": f"val-profile-{key}-name",
                "cls": 2,
                "argv": argv,
                "files": {"m.yaml": _dump(MODEL), "p.yaml": _dump(data)},
            }
        )
    return out


def _cli_numbers() -> list[dict]:
    out: list[dict] = []
    model = {"m.yaml": _dump(MODEL)}
    for i, t in enumerate(["99999999999999999999k", "1e400", "inf", "nan", "-1", "0k", "1.5k"]):
        out.append(
            {
                "id": f"val-seq-len-{i}",
                "cls": 2,
                "files": model,
                "argv": ["build", "{tmp}/m.yaml", "-T", t, "--no-count"],
            }
        )
    for i, b in enumerate(
        ["inf", "nan", "-inf", "1e400", "99999999999999999999999999t", "0", "2e15"]
    ):
        out.append(
            {
                "id": f"val-budget-tokens-{i}",
                "cls": 2,
                "files": model,
                "argv": ["train", "{tmp}/m.yaml", "--budget-tokens", b],
            }
        )
    for i, b in enumerate(["inf", "nan", "1e400"]):
        out.append(
            {
                "id": f"val-budget-flops-{i}",
                "cls": 2,
                "files": model,
                "argv": ["train", "{tmp}/m.yaml", "--budget-flops", b],
            }
        )
    opts = {
        "eval-tokens-inf": ("lm", "eval_tokens=.inf"),
        "eval-tokens-huge": ("lm", "eval_tokens=1000000000000000000"),
        "eval-batch-huge": ("lm", "eval_batch_size=1000000000"),
        "eval-tokens-list": ("lm", "eval_tokens=[1]"),
        "unknown": ("lm", "nope=1"),
        "mqar-pairs-nan": ("mqar", "num_pairs=.nan"),
        "mqar-pairs-huge": ("mqar", "num_pairs=100000000000"),
    }
    for name, (task, opt) in opts.items():
        argv = ["train", "{tmp}/m.yaml", "--task", task, "--budget-tokens", "1k", "-O", opt]
        out.append({"id": f"val-task-opt-{name}", "cls": 2, "files": model, "argv": argv})
    return out


def cases() -> list[dict]:
    out = _model_sizes() + _model_names() + _space_sections() + _space_values()
    out += _profile_cases() + _cli_numbers()
    return out
