"""Declarative search spaces (``search_spaces/*.yaml``) and the pure sampler that maps an Optuna
trial to a model config.

A leaf uses Optuna's own argument names, so it maps one-to-one onto a ``suggest_*`` call::

    {choices: [64, 128]}                  -> suggest_categorical
    {low: 2, high: 8, step: 2}            -> suggest_int   (low and high integers)
    {low: 1.0e-4, high: 1.0e-2, log: true} -> suggest_float (a float bound)
    {fraction_of_seq_len: {choices: [0.25, 0.5]}}   derived: round(fraction · seq_len)
    128                                   fixed (any scalar)

A space file::

    version: 1
    name: quickstart
    seq_len: 256                          # T: every variant is built, trained and profiled at it
    fixed: {vocab_size: 256, max_seq_len: 256, pos_encoding: rope}   # ModelConfig fields
    params:                               # sampled ModelConfig fields, plus n_layers, mlp_ratio
      d_model: {choices: [64, 128]}
      n_layers: {low: 2, high: 4}
    family:                               # one or more families; key = family, value = its fields
      decoder: {}
      perceiver_ar: {n_latents: {fraction_of_seq_len: {choices: [0.25, 0.5]}}}
    layers:
      mix: uniform                        # uniform | per_layer | hybrid
      mixer:                              # key = mixer kind, value = its fields' sub-space
        softmax: {n_heads: {choices: [2, 4]}}
        ecp: {n_heads: 2, segment_len: {choices: [32, 64]}}
      # mix: hybrid also takes softmax_layers: <leaf> and placement: <leaf over first, last,
      # middle, interleave>; mixer must then name softmax and exactly one other kind
    objectives:                           # 1-3; a quality metric of the task, or a profiled one
      - {metric: bits_per_byte, direction: minimize}   # direction: optional, the metric's own
      - {metric: flops_fwd, direction: minimize}
    constraints:                          # feasible iff metric <= max (smaller-is-better metrics)
      - {metric: params, max: 2000000}    #   or metric >= min (larger-is-better metrics)
      - {metric: receptive_field, min: seq_len}   # a bound may be the space's seq_len
    task: {name: lm, options: {eval_tokens: 8192}}
    train: {budget_tokens: 200000, batch_size: 8}

Parameter names are dotted paths and part of the schema (``version: 1``): ``d_model``,
``n_layers``, ``family``, ``family.perceiver_ar.n_latents``, ``mixer``, ``mixer.ecp.segment_len``,
``layers.3.mixer`` and ``layers.3.mixer.ecp.segment_len`` (per_layer), ``hybrid.softmax_layers``,
``hybrid.placement``. Conditional parameters are suggested only after the choice that enables
them (define-by-run), namespaced by that choice so each name keeps one distribution.

:func:`sample` is a pure function of the trial's suggestions, so any stored trial is rebuilt
exactly by ``sample(optuna.trial.FixedTrial(trial.params), space)``. A combination the model
rejects (``d_model`` not divisible by ``n_heads``, a segment that does not divide T, ...) raises
:class:`~archsearch.errors.ConfigError` from :func:`sample`: the search records it as infeasible
before any training.

Metric names, units and directions come from the registry (:mod:`archsearch.metrics`; the
catalogue is in docs/search.md, "Metrics"); the file format is in docs/search.md, "Spaces".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from archsearch.dataconf import MAX_D_MODEL, MAX_LAYERS, MAX_MLP_RATIO, MAX_SEQ_LEN, MAX_VOCAB
from archsearch.errors import ConfigError
from archsearch.metrics import all_metrics, get_metric
from archsearch.mixers import get_mixer, list_mixers
from archsearch.model.config import ModelConfig, model_config_from_dict
from archsearch.model.families import get_family, list_families
from archsearch.model.hybrid import softmax_positions
from archsearch.yamlio import (
    LineMap,
    line_of,
    load_yaml,
    parse_yaml,
    resolve_shipped,
    shipped_dir,
    shipped_names,
)

SCHEMA_VERSION = 1
MIXES = ("uniform", "per_layer", "hybrid")
HYBRID_PLACEMENTS = ("first", "last", "middle", "interleave")
_TOP_KEYS = (
    "version",
    "name",
    "description",
    "seq_len",
    "fixed",
    "params",
    "family",
    "layers",
    "objectives",
    "constraints",
    "task",
    "train",
)
_LEAF_KEYS = ("choices", "low", "high", "step", "log")
_SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Dist:
    """One sampled value: categorical, int or float, optionally a fraction of ``seq_len``."""

    kind: Literal["categorical", "int", "float"]
    choices: tuple[Any, ...] = ()
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False
    fraction_of_seq_len: bool = False

    def suggest(self, trial: Any, name: str, seq_len: int) -> Any:
        if self.kind == "categorical":
            v = trial.suggest_categorical(name, list(self.choices))
        elif self.kind == "int":
            v = trial.suggest_int(
                name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        else:
            v = trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)
        if self.fraction_of_seq_len:
            return max(1, round(v * seq_len))
        return v


Leaf = Any  # a Dist or a fixed scalar


def suggest(leaf: Leaf, trial: Any, name: str, seq_len: int) -> Any:
    return leaf.suggest(trial, name, seq_len) if isinstance(leaf, Dist) else leaf


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Constraint:
    """``metric <= max`` and/or ``metric >= min`` (the bounds resolved: ``seq_len`` is a number
    here; the space's ``raw`` keeps what the file says)."""

    metric: str
    max: float | None = None
    min: float | None = None

    def value(self, v: float) -> float:
        """Optuna's convention (feasible iff <= 0): the relative excess over ``max`` and the
        relative shortfall under ``min`` (``1 − v / min``), the larger of the two."""
        out = []
        if self.max is not None:
            out.append(v / self.max - 1.0 if self.max > 0 else v - self.max)
        if self.min is not None:
            out.append(1.0 - v / self.min if self.min > 0 else self.min - v)
        return max(out)

    def broken(self, v: float) -> str | None:
        """The broken bound in words ('receptive_field = 64 < 1024'), or None."""
        if self.max is not None and v > self.max:
            return f"{self.metric} = {v:.4g} > {self.max:.4g}"
        if self.min is not None and v < self.min:
            return f"{self.metric} = {v:.4g} < {self.min:.4g}"
        return None


@dataclass(frozen=True)
class SearchSpace:
    name: str
    seq_len: int
    fixed: dict[str, Any]
    params: dict[str, Leaf]
    families: dict[str, dict[str, Leaf]]
    mix: str
    mixers: dict[str, dict[str, Leaf]]
    mlp_ratio: Leaf = 4.0
    n_layers: Leaf = 2
    softmax_layers: Leaf = 1
    placement: Leaf = "interleave"
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    task: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    """the file's data as loaded, for the study's record and a clash check"""

    @property
    def other_mixer(self) -> str:
        """The non-softmax kind of a hybrid."""
        return next(k for k in self.mixers if k != "softmax")


# ---------------------------------------------------------------------------------------------
# sampling


def sample(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """The model config (as YAML-ready data) of one trial; a pure function of its suggestions.

    Use :func:`build_config` to get a validated :class:`ModelConfig` (it raises
    :class:`ConfigError` for a combination the model rejects).
    """
    T = space.seq_len
    model: dict[str, Any] = dict(space.fixed)
    for key, leaf in space.params.items():
        model[key] = suggest(leaf, trial, key, T)
    n_layers = int(suggest(space.n_layers, trial, "n_layers", T))
    mlp_ratio = float(suggest(space.mlp_ratio, trial, "mlp_ratio", T))

    fam = _choose(trial, "family", list(space.families))
    fam_fields = {
        f: suggest(leaf, trial, f"family.{fam}.{f}", T) for f, leaf in space.families[fam].items()
    }
    model["family"] = {"kind": fam, **fam_fields} if fam_fields else fam

    def mixer_block(kind: str, prefix: str) -> dict[str, Any]:
        fields = {
            f: suggest(leaf, trial, f"{prefix}.{kind}.{f}", T)
            for f, leaf in space.mixers[kind].items()
        }
        return {"mlp_ratio": mlp_ratio, "mixer": {"kind": kind, **fields}}

    kinds = list(space.mixers)
    if space.mix == "uniform":
        kind = _choose(trial, "mixer", kinds)
        layers = [{"repeat": n_layers, **mixer_block(kind, "mixer")}]
    elif space.mix == "per_layer":
        layers = []
        for i in range(n_layers):
            kind = _choose(trial, f"layers.{i}.mixer", kinds)
            layers.append(mixer_block(kind, f"layers.{i}.mixer"))
    else:
        k = int(suggest(space.softmax_layers, trial, "hybrid.softmax_layers", T))
        placement = suggest(space.placement, trial, "hybrid.placement", T)
        soft = mixer_block("softmax", "mixer")
        cheap = mixer_block(space.other_mixer, "mixer")
        try:
            pos = set(softmax_positions(n_layers, k, placement))
        except ConfigError as e:
            raise ConfigError(f"hybrid.{e.field}", e.value, e.allowed) from None
        layers = [soft if i in pos else cheap for i in range(n_layers)]
    model["layers"] = layers
    return model


def _choose(trial: Any, name: str, options: list[str]) -> str:
    """A categorical choice, suggested only when there is something to choose."""
    return options[0] if len(options) == 1 else trial.suggest_categorical(name, options)


def build_config(trial: Any, space: SearchSpace) -> Any:
    """The validated :class:`ModelConfig` of a trial, checked at ``space.seq_len``."""
    data = sample(trial, space)
    cfg = model_config_from_dict(data)
    cfg.check_seq_len(space.seq_len)
    return cfg


# ---------------------------------------------------------------------------------------------
# loading and validation


class _Ctx:
    """Where errors point: the file and the line of a key path."""

    def __init__(self, source: str, lines: LineMap) -> None:
        self.source, self.lines = source, lines

    def error(self, path: tuple[Any, ...], value: Any, allowed: str) -> ConfigError:
        name = ".".join(str(p) for p in path)
        line = None
        for cut in range(len(path), 0, -1):  # the deepest key that has a line
            line = line_of(self.lines, path[:cut])
            if line is not None:
                break
        return ConfigError(name, value, allowed, source=self.source, line=line)


def _leaf(ctx: _Ctx, path: tuple[Any, ...], data: Any) -> Leaf:
    if isinstance(data, _SCALARS):
        return data
    if not isinstance(data, dict):
        raise ctx.error(path, data, "a scalar or a mapping with choices, or low/high[/step/log]")
    if "fraction_of_seq_len" in data:
        if len(data) != 1:
            raise ctx.error(path, data, "{fraction_of_seq_len: <leaf>} and nothing else")
        inner = _leaf(ctx, (*path, "fraction_of_seq_len"), data["fraction_of_seq_len"])
        if not isinstance(inner, Dist):
            raise ctx.error(path, data, "a sampled fraction; write a fixed value directly")
        return dataclasses.replace(inner, fraction_of_seq_len=True)
    unknown = [k for k in data if k not in _LEAF_KEYS]
    if unknown:
        raise ctx.error((*path, unknown[0]), data[unknown[0]], "one of " + ", ".join(_LEAF_KEYS))
    if "choices" in data:
        if set(data) != {"choices"}:
            raise ctx.error(path, data, "choices alone, or low/high[/step/log]")
        ch = data["choices"]
        if not isinstance(ch, list) or not ch:
            raise ctx.error((*path, "choices"), ch, "a non-empty list of scalars")
        bad = [c for c in ch if not isinstance(c, _SCALARS)]
        if bad:
            raise ctx.error((*path, "choices"), bad[0], "scalars (null, bool, int, float, str)")
        if len(set(map(repr, ch))) != len(ch):
            raise ctx.error((*path, "choices"), ch, "distinct values")
        return Dist("categorical", choices=tuple(ch))
    if "low" not in data or "high" not in data:
        raise ctx.error(path, data, "choices, or both low and high")
    lo, hi, step, log = data["low"], data["high"], data.get("step"), data.get("log", False)
    for key, v in (("low", lo), ("high", hi), ("step", step)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ctx.error((*path, key), v, "a number")
        if v is not None and not math.isfinite(v):
            raise ctx.error((*path, key), v, "a finite number")
    if not isinstance(log, bool):
        raise ctx.error((*path, "log"), log, "true or false")
    if lo > hi:
        raise ctx.error((*path, "low"), lo, f"a number <= high ({hi})")
    if step is not None and step <= 0:
        raise ctx.error((*path, "step"), step, "a positive number")
    if log and (lo <= 0 or step not in (None, 1)):
        raise ctx.error((*path, "log"), log, "false unless low > 0 and no step")
    is_int = all(isinstance(v, int) for v in (lo, hi)) and (step is None or isinstance(step, int))
    return Dist("int" if is_int else "float", low=lo, high=hi, step=step, log=log)


def _fields_of(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _subspace(
    ctx: _Ctx, path: tuple[Any, ...], data: Any, allowed_fields: list[str], what: str
) -> dict[str, Leaf]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ctx.error(path, data, f"a mapping of {what} fields to values or leaves")
    out = {}
    for key, value in data.items():
        if key not in allowed_fields or key == "kind":
            allowed = ", ".join(f for f in allowed_fields if f != "kind") or "none"
            raise ctx.error((*path, key), value, f"a field of {what}: {allowed}")
        out[key] = _leaf(ctx, (*path, key), value)
    return out


def space_from_data(
    data: Any, *, source: str = "<string>", lines: LineMap | None = None
) -> SearchSpace:
    """Validate a space's data; every error names the file, the line and the field."""
    ctx = _Ctx(source, lines or {})
    seq_len = _top_level(ctx, data)
    fixed, model_fields = _fixed(ctx, data.get("fixed") or {})
    params_data = data.get("params") or {}
    params = _subspace(
        ctx, ("params",), params_data, [*model_fields, "n_layers", "mlp_ratio"], "the model"
    )
    _check_sizes(ctx, ("params",), params)
    _check_sizes(ctx, ("fixed",), fixed)
    n_layers = params.pop("n_layers", 2)
    mlp_ratio = params.pop("mlp_ratio", 4.0)
    if "d_model" not in params and "d_model" not in fixed:
        raise ctx.error(("params", "d_model"), None, "d_model in params or fixed (required)")
    families = _families(ctx, data.get("family", {"decoder": {}}))
    mix, mixers, softmax_layers, placement = _layers(ctx, data.get("layers"))
    objectives = _objectives(ctx, data.get("objectives"))
    constraints = _constraints(ctx, data.get("constraints"), seq_len)
    for key in ("task", "train"):
        if not isinstance(data.get(key) or {}, dict):
            raise ctx.error((key,), data[key], "a mapping")
    return SearchSpace(
        name=str(data.get("name") or Path(source).stem),
        seq_len=seq_len,
        fixed=dict(fixed),
        params=params,
        families=families,
        mix=mix,
        mixers=mixers,
        mlp_ratio=mlp_ratio,
        n_layers=n_layers,
        softmax_layers=softmax_layers,
        placement=placement,
        objectives=objectives,
        constraints=constraints,
        task=dict(data.get("task") or {}),
        train=dict(data.get("train") or {}),
        description=str(data.get("description") or ""),
        source=source,
        raw=data,
    )


def _top_level(ctx: _Ctx, data: Any) -> int:
    """Check the top-level keys and the version; returns ``seq_len``."""
    if not isinstance(data, dict) or not data:
        raise ctx.error(
            (), data, "a mapping with version, seq_len, params/family/layers, objectives"
        )
    for key in data:
        if key not in _TOP_KEYS:
            raise ctx.error((key,), data[key], "one of " + ", ".join(_TOP_KEYS))
    if data.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ctx.error(("version",), data.get("version"), f"{SCHEMA_VERSION}")
    seq_len = data.get("seq_len")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= MAX_SEQ_LEN:
        allowed = f"an integer from 1 to {MAX_SEQ_LEN:,} (the window T every trial uses)"
        raise ctx.error(("seq_len",), seq_len, allowed)
    for key in ("name", "description"):
        if not isinstance(data.get(key) or "", str):
            raise ctx.error((key,), data[key], "text")
    return seq_len


#: the sizes a space may sample, within the bounds every model config has
_SIZE_BOUNDS = {
    "d_model": (1, MAX_D_MODEL),
    "vocab_size": (1, MAX_VOCAB),
    "max_seq_len": (1, MAX_SEQ_LEN),
    "n_layers": (1, MAX_LAYERS),
    "mlp_ratio": (0, MAX_MLP_RATIO),
}


def _check_sizes(ctx: _Ctx, path: tuple[Any, ...], leaves: dict[str, Any]) -> None:
    """Every value a size leaf can take lies within the documented bounds (checked before any
    trial is sampled, so a typo never builds anything)."""
    for key, (low, high) in _SIZE_BOUNDS.items():
        if key not in leaves:
            continue
        leaf = leaves[key]
        if isinstance(leaf, Dist) and leaf.fraction_of_seq_len:
            continue
        if isinstance(leaf, Dist):
            values = list(leaf.choices) if leaf.kind == "categorical" else [leaf.low, leaf.high]
        else:
            values = [leaf]
        for v in values:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high
            if isinstance(v, (int, float)) and key == "mlp_ratio":
                ok = ok and v > 0
            if not ok:
                raise ctx.error((*path, key), v, f"a size from {low} to {high:,}")


def _fixed(ctx: _Ctx, fixed: Any) -> tuple[dict[str, Any], list[str]]:
    """The fixed model fields, and the names of every settable model field."""
    model_fields = [f for f in _fields_of(ModelConfig) if f not in ("layers", "family", "name")]
    if not isinstance(fixed, dict):
        raise ctx.error(("fixed",), fixed, "a mapping of model fields to values")
    for key, value in fixed.items():
        if key not in model_fields:
            raise ctx.error(("fixed", key), value, "a model field: " + ", ".join(model_fields))
        if not isinstance(value, _SCALARS):
            raise ctx.error(("fixed", key), value, "a scalar")
    return fixed, model_fields


def _families(ctx: _Ctx, fam_data: Any) -> dict[str, dict[str, Leaf]]:
    if isinstance(fam_data, str):
        fam_data = {fam_data: {}}
    if not isinstance(fam_data, dict) or not fam_data:
        raise ctx.error(("family",), fam_data, "a mapping of family names to their sub-spaces")
    families = {}
    for kind, sub in fam_data.items():
        if kind not in list_families():
            raise ctx.error(("family", kind), sub, "a family: " + ", ".join(list_families()))
        families[kind] = _subspace(
            ctx, ("family", kind), sub, _fields_of(get_family(kind).Config), f"family {kind}"
        )
    return families


def _layers(ctx: _Ctx, layers: Any) -> tuple[str, dict[str, dict[str, Leaf]], Leaf, Leaf]:
    """``layers:``: (mix, mixer sub-spaces, softmax_layers, placement)."""
    if not isinstance(layers, dict):
        raise ctx.error(("layers",), layers, "a mapping with mix and mixer")
    for key in layers:
        if key not in ("mix", "mixer", "softmax_layers", "placement"):
            raise ctx.error(
                ("layers", key), layers[key], "one of mix, mixer, softmax_layers, placement"
            )
    mix = layers.get("mix", "uniform")
    if mix not in MIXES:
        raise ctx.error(("layers", "mix"), mix, "one of " + ", ".join(MIXES))
    mixer_data = layers.get("mixer")
    if not isinstance(mixer_data, dict) or not mixer_data:
        raise ctx.error(("layers", "mixer"), mixer_data, "a mapping of mixer kinds to sub-spaces")
    mixers = {}
    for kind, sub in mixer_data.items():
        if kind not in list_mixers():
            raise ctx.error(("layers", "mixer", kind), sub, "a mixer: " + ", ".join(list_mixers()))
        mixers[kind] = _subspace(
            ctx, ("layers", "mixer", kind), sub, _fields_of(get_mixer(kind).Config), f"mixer {kind}"
        )
    if mix != "hybrid":
        for key in ("softmax_layers", "placement"):
            if key in layers:
                raise ctx.error(("layers", key), layers[key], "only with mix: hybrid")
        return mix, mixers, 1, "interleave"
    if "softmax" not in mixers or len(mixers) != 2:
        raise ctx.error(
            ("layers", "mixer"),
            list(mixers),
            "softmax and exactly one other mixer kind (mix: hybrid)",
        )
    softmax_layers = _leaf(ctx, ("layers", "softmax_layers"), layers.get("softmax_layers", 1))
    placement = _leaf(ctx, ("layers", "placement"), layers.get("placement", "interleave"))
    values = placement.choices if isinstance(placement, Dist) else (placement,)
    bad = [p for p in values if p not in HYBRID_PLACEMENTS]
    if bad:
        raise ctx.error(("layers", "placement"), bad[0], "one of " + ", ".join(HYBRID_PLACEMENTS))
    return mix, mixers, softmax_layers, placement


def _metric_ok(ctx: _Ctx, path: tuple[Any, ...], metric: Any) -> str:
    """A registered metric's name (:mod:`archsearch.metrics`); a located error otherwise."""
    try:
        return get_metric(metric, ".".join(map(str, path))).name
    except ConfigError as e:
        raise ctx.error(path, metric, e.allowed) from None


def _objectives(ctx: _Ctx, data: Any) -> tuple[Objective, ...]:
    """1 to 3 objectives; each goes the way its metric is better (the direction may be left out)."""
    if not isinstance(data, list) or not 1 <= len(data) <= 3:
        raise ctx.error(("objectives",), data, "a list of 1 to 3 {metric, direction} entries")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not {"metric"} <= set(item) <= {"metric", "direction"}:
            raise ctx.error(("objectives", i), item, "{metric: NAME, direction: minimize|maximize}")
        metric = get_metric(_metric_ok(ctx, ("objectives", i, "metric"), item["metric"]))
        direction = item.get("direction", metric.direction)
        if direction != metric.direction:
            better = "smaller" if metric.direction == "minimize" else "larger"
            raise ctx.error(
                ("objectives", i, "direction"),
                direction,
                f"{metric.direction} ({metric.name}: {better} is better)",
            )
        out.append(Objective(metric.name, metric.direction))
    if len({o.metric for o in out}) != len(out):
        raise ctx.error(("objectives",), [o.metric for o in out], "distinct metrics")
    return tuple(out)


def _constraints(ctx: _Ctx, data: Any, seq_len: int) -> tuple[Constraint, ...]:
    """Upper bounds on metrics where smaller is better, lower bounds where larger is better; a
    bound is a number or ``seq_len`` (the space's window)."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ctx.error(("constraints",), data, "a list of {metric, max} or {metric, min} entries")
    shape = "{metric: NAME, max: NUMBER} or {metric: NAME, min: NUMBER | seq_len}"
    out = []
    first: dict[str, int] = {}
    for i, item in enumerate(data):
        keys = set(item) if isinstance(item, dict) else set()
        if "metric" not in keys or not keys - {"metric"} or keys - {"metric", "max", "min"}:
            raise ctx.error(("constraints", i), item, shape)
        metric = get_metric(_metric_ok(ctx, ("constraints", i, "metric"), item["metric"]))
        bounds: dict[str, float] = {}
        for key, better in (("max", "minimize"), ("min", "maximize")):
            if key not in item:
                continue
            if metric.direction != better:
                named = [m.name for m in all_metrics().values() if m.direction == better]
                side = "smaller" if key == "max" else "larger"
                raise ctx.error(
                    ("constraints", i, "metric"),
                    metric.name,
                    f"a metric where {side} is better ({key} is a bound on it): "
                    + ", ".join(named),
                )
            bounds[key] = _bound(ctx, ("constraints", i, key), item[key], seq_len)
        if metric.name in first:
            raise ctx.error(
                ("constraints", i, "metric"),
                metric.name,
                f"one entry per metric (constraints[{first[metric.name]}] bounds it too)",
            )
        first[metric.name] = i
        out.append(Constraint(metric.name, **bounds))
    return tuple(out)


def _bound(ctx: _Ctx, path: tuple[Any, ...], bound: Any, seq_len: int) -> float:
    if bound == "seq_len":
        return float(seq_len)
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
        raise ctx.error(path, bound, "a finite number or seq_len")
    return float(bound)


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a space file (a path, or a shipped space's name)."""
    p = resolve_space_path(path)
    data, lines = load_yaml(p)
    return space_from_data(data, source=str(p), lines=lines)


def parse_space(text: str, *, source: str = "<string>") -> SearchSpace:
    data, lines = parse_yaml(text, source=source)
    return space_from_data(data, source=source, lines=lines)


#: the shipped spaces, package data (``quickstart`` means ``SPACES_DIR / "quickstart.yaml"``); the
#: repository's top-level ``search_spaces/`` is a link to this folder
SPACES_DIR = shipped_dir("search_spaces")


def shipped_spaces() -> list[str]:
    """The names of the shipped search spaces (``quickstart``, ``hsm_hybrid``, ...), sorted."""
    return shipped_names(SPACES_DIR)


def resolve_space_path(spec: str | Path) -> Path:
    """A path that exists wins; else a shipped space's name (``quickstart``); else a YAML path (a
    missing one fails when read, naming it) or an error listing the shipped spaces."""
    return resolve_shipped(
        spec, SPACES_DIR, field="space", what="a search space YAML path or a shipped space"
    )


def check_buildable(space: SearchSpace, *, tries: int = 64, seed: int = 0) -> int:
    """Draw ``tries`` random trials; raise :class:`ConfigError` if none gives a valid model (a
    contradictory space). Returns how many were valid."""
    return len(sample_configs(space, tries=tries, seed=seed))


def sample_configs(space: SearchSpace, *, tries: int = 64, seed: int = 0) -> list[ModelConfig]:
    """The valid models among ``tries`` random draws of the space (the up-front checks read
    them: buildable at all, a budget that trains the cheapest of them); a :class:`ConfigError`
    if there is none."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    ok: list[ModelConfig] = []
    last = None
    for _ in range(tries):
        trial = study.ask()
        try:
            ok.append(build_config(trial, space))
        except ConfigError as e:
            last = e
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    if not ok:
        assert last is not None
        raise ConfigError(
            "space",
            space.name,
            f"a space with at least one buildable model: {tries} random draws all failed, "
            f"e.g. {last}",
            source=space.source,
        )
    return ok
