"""The Python API: what the command line does, callable from a notebook or a script.

Every function takes a model as a YAML path, a parsed mapping or a :class:`ModelConfig`, raises
the same one-line :class:`~archsearch.errors.ConfigError` as the CLI on bad input, and returns
plain data (or the library's result objects)::

    import archsearch

    cfg = archsearch.load_model("models/tiny-softmax.yaml", sets=["d_model=64"])
    archsearch.count_flops(cfg, seq_len=1024)["training_exact"]
    model = archsearch.build(cfg)                       # a torch.nn.Module
    row = archsearch.profile(cfg, seq_len=512, metrics=("flops", "memory"))
    res = archsearch.train(cfg, budget_tokens=50_000)   # res.final["bits_per_byte"]
    summary = archsearch.run_search("quickstart", trials=4, out="runs/nb")
    archsearch.report("runs/nb")                        # redraw or refresh the report
    model = archsearch.load_trained("runs/nb/report/pareto/trial-0003-hsm.yaml")  # + weights

``import archsearch`` stays cheap: the package exports these names lazily, and torch is imported
by the first call that needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from archsearch import API
from archsearch.errors import ConfigError
from archsearch.model.config import (
    ModelConfig,
    load_model_config_located,
    model_config_to_dict,
    model_config_with_locator,
)
from archsearch.model.costs import model_cost
from archsearch.model.overrides import apply_sets
from archsearch.model.transformer import LanguageModel, build_model, count_params
from archsearch.model.weights import load_trained  # noqa: F401  (exported: archsearch.API)
from archsearch.profiling.profiles import Profile, check_device, load_profile
from archsearch.profiling.runner import Variant, parse_metrics, profile_point
from archsearch.quality.tasks import get_task, make_task
from archsearch.quality.train import TrainConfig, TrainResult, fewest_tokens
from archsearch.quality.train import train as _train
from archsearch.search.report_source import make_report
from archsearch.search.run import run_search as _run_search

ModelLike = str | Path | Mapping[str, Any] | ModelConfig

__all__ = list(API)  # the names the package exports lazily (archsearch.API)


def load_model(model: ModelLike, *, sets: Sequence[str] = ()) -> ModelConfig:
    """A validated model config from a YAML path, a mapping (the YAML's data) or a config,
    with ``--set``-style changes (``["d_model=256", "layers.0.mixer.n_heads=8"]``) applied."""
    if isinstance(model, ModelConfig):
        if not sets:
            return model
        model = model_config_to_dict(model)
    if isinstance(model, Mapping):
        return model_config_with_locator(apply_sets(dict(model), sets), source="<mapping>")[0]
    if isinstance(model, (str, Path)):
        return load_model_config_located(model, sets)[0]
    raise ConfigError("model", model, "a YAML path, a mapping or a ModelConfig")


def count_flops(model: ModelLike, seq_len: int | None = None) -> dict[str, Any]:
    """Analytic FLOPs of one window (a multiply-add is 2 FLOPs; docs/costs.md, "FLOP
    conventions"), the parameters and the decode state, at ``seq_len`` (default: the model's
    ``max_seq_len``)."""
    cfg = load_model(model)
    T = seq_len or cfg.max_seq_len
    cfg.check_seq_len(T)
    c = model_cost(cfg, T)
    return {
        "seq_len": T,
        "params": count_params(cfg),
        "forward_exact": c.forward_exact,
        "forward_dense": c.forward_dense,
        "training_exact": c.training_exact,
        "training_dense": c.training_dense,
        "forward_exact_per_token": c.forward_exact / T,
        "training_exact_per_token": c.training_exact / T,
        "decode_state_numbers": c.decode_state,
    }


def build(model: ModelLike, *, device: str | None = None) -> LanguageModel:
    """The model as a ``torch.nn.Module`` (on ``device`` if given)."""
    return build_model(load_model(model), device=device)


def _profile(spec: str | Path | Profile) -> Profile:
    if isinstance(spec, Profile):
        return spec
    prof = load_profile(spec)
    check_device(prof)
    return prof


def profile(
    model: ModelLike,
    seq_len: int | None = None,
    *,
    profile: str | Path | Profile = "cpu",
    metrics: Iterable[str] = ("flops", "memory", "latency"),
    fvcore: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """One profiler row (the columns of ``archsearch profile --csv``): FLOPs three ways,
    memory and latency, as asked by ``metrics``, on the hardware preset ``profile``."""
    cfg = load_model(model)
    T = seq_len or cfg.max_seq_len
    v = Variant(name or cfg.name or "model", cfg)
    pt = profile_point(v, T, _profile(profile), parse_metrics(",".join(metrics)), fvcore=fvcore)
    if pt.error is not None:
        raise pt.error
    return dict(pt.row)


def train(
    model: ModelLike,
    *,
    task: str = "lm",
    task_options: Mapping[str, Any] | None = None,
    seq_len: int | None = None,
    profile: str | Path | Profile = "cpu",
    **recipe: Any,
) -> TrainResult:
    """A short, fair training run, as ``archsearch train``: ``recipe`` holds the
    :class:`~archsearch.quality.train.TrainConfig` fields (``budget_tokens``, ``budget_flops``,
    ``batch_size``, ``lr``, ``evals``, ``seed``, ...); the lm task's ``data`` goes in
    ``task_options``. Returns the result (``.final``, ``.curve``, ``.to_dict()``)."""
    cfg = load_model(model)
    tcls = get_task(task, field="task")
    if not tcls.sets_seq_len:
        seq_len = seq_len or cfg.max_seq_len
    prof = _profile(profile)
    try:
        tcfg = TrainConfig(**{"compile": prof.compile, **recipe})
    except TypeError as e:
        raise ConfigError("recipe", sorted(recipe), f"TrainConfig fields ({e})") from None
    options = dict(task_options or {})
    if seq_len is not None:  # held-out size from this run's budget (eval_tokens: auto)
        options = tcls.sized_options(options, fewest_tokens(tcfg, seq_len, [cfg]))
    the_task = make_task(task, options, seq_len=seq_len)
    the_task.check_model(cfg)
    return _train(cfg, the_task, tcfg, prof)


def run_search(
    space: str | Path, *, trials: int = 20, out: str | Path | None = None, **options: Any
) -> dict[str, Any]:
    """A search, as ``archsearch search SPACE`` (not ``archsearch.search``, which is the
    subpackage): ``space`` is a YAML path or a shipped name;
    ``options`` are :func:`archsearch.search.run.run_search`'s (``task``, ``budget_flops``,
    ``sampler``, ``seed``, ``workers``, ``profile`` as a name or preset, ...). Returns the
    summary; the report is under ``out/report``."""
    if "profile" in options:
        options["profile"] = _profile(options["profile"])
    return _run_search(str(space), trials=trials, out=Path(out) if out else None, **options)


def report(
    source: str | Path, out: str | Path | None = None, *, study: str | None = None
) -> dict[str, Any]:
    """The report of a search, as ``archsearch report``: ``source`` is a search folder, a study
    file or URL, or a saved report folder (redrawn from its CSV files). What was written."""
    return make_report(str(source), study=study, out=Path(out) if out else None)
