"""The claims study's declaration (``claims.yaml``): scales, experiments and claims, validated.

A *scale* (``cpu``, ``gpu``) is a hardware profile, a seed count, a folder of model YAMLs and its
*experiments*; an experiment is one task at one window length and one training recipe at equal
compute (``budget_flops``), with the models that train in it. A *claim* is a list of *rows*, each
one test on the runs of one experiment (:mod:`archsearch.search.claims.verdicts`), and a rule that
turns the rows' verdicts into the claim's. Every problem is one :class:`ConfigError` naming the
file, the field path, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.dataconf import MAX_SEQ_LEN, check_int, check_number
from archsearch.errors import ConfigError
from archsearch.yamlio import line_of, load_yaml

TESTS = ("better", "close", "solves", "cheaper")
"""better: the model beats the baseline; close: it is not worse by more than the margin; solves:
its accuracy reaches the threshold; cheaper: its analytic cost is lower (no seeds involved)"""
COSTS = ("flops_train", "flops_fwd", "decode_state")
RULES = ("all", "any")
CLOSE_MARGIN_BPB = math.log2(1.03)
"""'close' by default: within 3% perplexity per byte, log2(1.03) = 0.0427 bits per byte"""


@dataclass(frozen=True)
class Experiment:
    """One task, window and recipe; every model trains once per seed at ``budget_flops``."""

    name: str
    task: str
    options: dict[str, Any]
    seq_len: int
    budget_flops: float
    batch_size: int
    lr: float
    evals: int
    models: tuple[str, ...]


@dataclass(frozen=True)
class Scale:
    name: str
    profile: str
    seeds: int
    models_dir: Path
    experiments: dict[str, Experiment]
    quick_seeds: int = 1
    quick_budget: float = 0.1
    """--quick: this many seeds, and this fraction of every budget"""

    def model_path(self, model: str) -> Path:
        return self.models_dir / f"{model}.yaml"


@dataclass(frozen=True)
class Row:
    """One test: ``model`` against ``baseline`` (or alone for ``solves``) in ``experiment``."""

    test: str
    experiment: str
    model: str
    baseline: str | None = None
    cost: str | None = None
    seq_len: int | None = None
    counts: bool = True
    """False: shown in the claim's table, but not part of its verdict"""


@dataclass(frozen=True)
class Selection:
    """``name`` stands for the best of ``among`` (by mean over seeds) in ``experiment``."""

    name: str
    experiment: str
    among: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    source: str
    quote: str
    rule: str
    rows: tuple[Row, ...]
    selections: tuple[Selection, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Spec:
    path: Path
    scales: dict[str, Scale]
    claims: tuple[Claim, ...]
    close_margin: float = CLOSE_MARGIN_BPB
    solve_accuracy: float = 0.9
    extra: dict[str, Any] = field(default_factory=dict)


class _Reader:
    """Field access on the parsed YAML with errors that name the file, line and field path."""

    def __init__(self, path: Path, lines: Any) -> None:
        self.path, self.lines = path, lines

    def error(self, where: tuple[Any, ...], value: Any, allowed: str) -> ConfigError:
        name = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in where)
        name = name.replace(".[", "[")
        return ConfigError(
            name or "claims", value, allowed, source=str(self.path), line=line_of(self.lines, where)
        )

    def mapping(self, data: Any, where: tuple[Any, ...], keys: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error(where, data, "a mapping")
        for k in data:
            if k not in keys:
                raise self.error((*where, k), data[k], "one of the keys " + ", ".join(sorted(keys)))
        return data

    def get(self, data: dict[str, Any], key: str, where: tuple[Any, ...], kind: type) -> Any:
        if key not in data:
            raise self.error((*where, key), None, f"a {kind.__name__} (this key is required)")
        value = data[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise self.error((*where, key), value, f"a {kind.__name__}")
        return value

    def checked(self, fn: Any, where: tuple[Any, ...], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except ConfigError as e:
            raise self.error(where, e.value, e.allowed) from None

    def names(self, data: dict[str, Any], key: str, where: tuple[Any, ...]) -> tuple[str, ...]:
        value = data.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error((*where, key), value, "a non-empty list of model names")
        return tuple(value)


_EXPERIMENT_KEYS = {"task", "options", "seq_len", "budget_flops", "batch_size", "lr", "evals"}


def _experiment(r: _Reader, name: str, data: Any, where: tuple[Any, ...]) -> Experiment:
    r.mapping(data, where, _EXPERIMENT_KEYS | {"models"})
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise r.error((*where, "options"), options, "a mapping of task options")
    seq_len = r.get(data, "seq_len", where, int)
    r.checked(check_int, (*where, "seq_len"), "seq_len", seq_len, 1, MAX_SEQ_LEN)
    budget = r.get(data, "budget_flops", where, float)
    r.checked(check_number, (*where, "budget_flops"), "b", budget, 0, 1e30, open_low=True)
    batch = r.get(data, "batch_size", where, int)
    r.checked(check_int, (*where, "batch_size"), "batch_size", batch, 1, 1 << 16)
    evals = r.get(data, "evals", where, int)
    r.checked(check_int, (*where, "evals"), "evals", evals, 1, 1000)
    lr = r.get(data, "lr", where, float)
    r.checked(check_number, (*where, "lr"), "lr", lr, 0, 10, open_low=True)
    return Experiment(
        name=name,
        task=r.get(data, "task", where, str),
        options=dict(options),
        seq_len=seq_len,
        budget_flops=float(budget),
        batch_size=batch,
        lr=float(lr),
        evals=evals,
        models=r.names(data, "models", where),
    )


def _scale(r: _Reader, name: str, data: Any) -> Scale:
    where: tuple[Any, ...] = ("scales", name)
    r.mapping(data, where, {"profile", "seeds", "models", "experiments", "quick"})
    seeds = r.get(data, "seeds", where, int)
    r.checked(check_int, (*where, "seeds"), "seeds", seeds, 1, 100)
    folder = r.path.parent / r.get(data, "models", where, str)
    if not folder.is_dir():
        raise r.error((*where, "models"), str(folder), "a folder of model YAMLs")
    exps = data.get("experiments")
    if not isinstance(exps, dict) or not exps:
        raise r.error((*where, "experiments"), exps, "a non-empty mapping of experiments")
    experiments = {k: _experiment(r, k, v, (*where, "experiments", k)) for k, v in exps.items()}
    for exp in experiments.values():
        for i, m in enumerate(exp.models):
            if not (folder / f"{m}.yaml").is_file():
                at = (*where, "experiments", exp.name, "models", i)
                raise r.error(at, m, f"a model with a YAML file in {folder}")
    quick = r.mapping(data.get("quick", {}), (*where, "quick"), {"seeds", "budget"})
    qs = quick.get("seeds", 1)
    r.checked(check_int, (*where, "quick", "seeds"), "seeds", qs, 1, seeds)
    qb = quick.get("budget", 0.1)
    r.checked(check_number, (*where, "quick", "budget"), "budget", qb, 0, 1, open_low=True)
    return Scale(name, r.get(data, "profile", where, str), seeds, folder, experiments, qs, qb)


_ROW_KEYS = {"test", "experiment", "model", "baseline", "cost", "seq_len", "counts"}


def _row(r: _Reader, data: Any, where: tuple[Any, ...]) -> Row:
    r.mapping(data, where, _ROW_KEYS)
    test = r.get(data, "test", where, str)
    if test not in TESTS:
        raise r.error((*where, "test"), test, "one of " + ", ".join(TESTS))
    base = data.get("baseline")
    if test != "solves" and not isinstance(base, str):
        raise r.error((*where, "baseline"), base, f"a model name (test {test} compares two)")
    cost = data.get("cost")
    if test == "cheaper" and cost not in COSTS:
        raise r.error((*where, "cost"), cost, "one of " + ", ".join(COSTS))
    seq_len = data.get("seq_len")
    if seq_len is not None:
        r.checked(check_int, (*where, "seq_len"), "seq_len", seq_len, 1, MAX_SEQ_LEN)
    counts = data.get("counts", True)
    if not isinstance(counts, bool):
        raise r.error((*where, "counts"), counts, "true or false")
    return Row(
        test,
        r.get(data, "experiment", where, str),
        r.get(data, "model", where, str),
        base,
        cost,
        seq_len,
        counts,
    )


def _claim_id(r: _Reader, data: dict[str, Any], where: tuple[Any, ...]) -> str:
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise r.error((*where, "id"), value, "a short name or number (required)")
    return str(value)


def _claim(r: _Reader, data: Any, i: int) -> Claim:
    where: tuple[Any, ...] = ("claims", i)
    keys = {"id", "title", "source", "quote", "rule", "rows", "select", "notes"}
    r.mapping(data, where, keys)
    rule = data.get("rule", "all")
    if rule not in RULES:
        raise r.error((*where, "rule"), rule, "one of " + ", ".join(RULES))
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise r.error((*where, "rows"), rows, "a non-empty list of rows")
    sels = []
    for j, s in enumerate(data.get("select", []) or []):
        at = (*where, "select", j)
        r.mapping(s, at, {"name", "experiment", "among"})
        sels.append(
            Selection(
                r.get(s, "name", at, str), r.get(s, "experiment", at, str), r.names(s, "among", at)
            )
        )
    return Claim(
        id=_claim_id(r, data, where),
        title=r.get(data, "title", where, str),
        source=r.get(data, "source", where, str),
        quote=r.get(data, "quote", where, str),
        rule=rule,
        rows=tuple(_row(r, row, (*where, "rows", j)) for j, row in enumerate(rows)),
        selections=tuple(sels),
        notes=str(data.get("notes", "")),
    )


def _check_names(r: _Reader, spec: Spec) -> None:
    """Every row names an experiment and models every scale has."""
    for i, c in enumerate(spec.claims):
        chosen = {s.name: s for s in c.selections}
        for j, row in enumerate(c.rows):
            for scale in spec.scales.values():
                exp = scale.experiments.get(row.experiment)
                at = ("claims", i, "rows", j)
                if exp is None:
                    allowed = "an experiment of scale " + scale.name + ": "
                    raise r.error(
                        (*at, "experiment"), row.experiment, allowed + ", ".join(scale.experiments)
                    )
                for key in ("model", "baseline"):
                    name = getattr(row, key)
                    if name is None:
                        continue
                    among = chosen[name].among if name in chosen else (name,)
                    missing = [m for m in among if m not in exp.models]
                    if missing:
                        raise r.error(
                            (*at, key),
                            missing[0],
                            f"a model of experiment {exp.name} in scale "
                            f"{scale.name}: " + ", ".join(exp.models),
                        )


def load_spec(path: str | Path, *, profile: str | None = None) -> Spec:
    """Read and check ``claims.yaml``; ``profile`` replaces every scale's hardware profile."""
    p = Path(path)
    data, lines = load_yaml(p)
    r = _Reader(p, lines)
    r.mapping(data, (), {"scales", "claims", "close_margin", "solve_accuracy"})
    scales = data.get("scales")
    if not isinstance(scales, dict) or not scales:
        raise r.error(("scales",), scales, "a non-empty mapping of scales (cpu, gpu, ...)")
    claims = data.get("claims")
    if not isinstance(claims, list) or not claims:
        raise r.error(("claims",), claims, "a non-empty list of claims")
    margin = data.get("close_margin", CLOSE_MARGIN_BPB)
    r.checked(check_number, ("close_margin",), "m", margin, 0, 100)
    solve = data.get("solve_accuracy", 0.9)
    r.checked(check_number, ("solve_accuracy",), "s", solve, 0, 1, open_low=True)
    spec = Spec(
        path=p,
        scales={k: _scale(r, k, v) for k, v in scales.items()},
        claims=tuple(_claim(r, c, i) for i, c in enumerate(claims)),
        close_margin=float(margin),
        solve_accuracy=float(solve),
    )
    _check_names(r, spec)
    if profile is not None:
        scales = {k: dataclasses.replace(v, profile=profile) for k, v in spec.scales.items()}
        spec = dataclasses.replace(spec, scales=scales)
    return spec


def scale_of(spec: Spec, name: str) -> Scale:
    if name not in spec.scales:
        allowed = "one of " + ", ".join(spec.scales)
        raise ConfigError("--scale", name, allowed, source=str(spec.path))
    return spec.scales[name]
