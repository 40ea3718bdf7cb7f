"""A study's settings and identity: what makes its trials comparable, and opening it.

A study is stored in an Optuna storage (default: a SQLite file under the output folder; see
:mod:`archsearch.search.storage`). Its user attribute ``archsearch`` records what makes its trials
comparable: the space (as loaded), the task and its options, the profile, the training recipe and
the halving schedule, and the budget mode: ``train.budget_mode`` is ``flops`` when every trial
gets the same training FLOPs (``budget_flops``; the rungs of successive halving are then
fractions of that FLOPs budget) and ``tokens`` when every trial gets the same data. Opening an
existing study with anything different is a one-line error *before* anything is written, so a
failed validation never modifies a study. Running the same command again resumes it:
``--trials`` is the number of finished trials the study should hold.

The trials themselves are run by :class:`archsearch.search.loop.Search`, one at a time, through
the per-trial pipeline of :mod:`archsearch.search.pipeline`; see docs/search.md, "Spaces".
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna

from archsearch import __version__
from archsearch.dataconf import check_int, from_dict
from archsearch.errors import ConfigError
from archsearch.metrics import is_metric
from archsearch.model.config import ModelConfig
from archsearch.profiling.profiles import Profile
from archsearch.quality.tasks import get_task
from archsearch.quality.train import TrainConfig, fewest_tokens
from archsearch.search.halving import Halving
from archsearch.search.objective import is_profiled
from archsearch.search.space import SearchSpace, sample_configs, space_from_data
from archsearch.search.storage import (  # noqa: F401  (open_storage, storage_url: kept importable)
    open_storage,
    storage_url,
    study_names,
)

SAMPLERS = ("tpe", "nsga2", "gp", "random")
ATTR = "archsearch"
"""the study user attribute holding the settings"""
TARGET = "archsearch.target_trials"
"""the study user attribute holding the number of finished trials its search asked for"""


@dataclass
class Settings:
    """Everything that makes a study's trials comparable (stored with the study)."""

    space: SearchSpace
    task: str
    task_options: dict[str, Any]
    profile: Profile
    train: TrainConfig
    halving: Halving = field(default_factory=Halving)

    @property
    def objectives(self) -> list[str]:
        return [o.metric for o in self.space.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.space.objectives]

    def record(self) -> dict[str, Any]:
        train = {k: v for k, v in dataclasses.asdict(self.train).items() if k != "eval_at"}
        train["budget_mode"] = self.train.budget_mode
        return {
            "space": jsonable(self.space.raw),
            "space_name": self.space.name,
            "space_source": self.space.source,
            "task": {"name": self.task, "options": jsonable(self.task_options)},
            "profile": jsonable(self.profile.to_dict()),
            "train": jsonable(train),
            "halving": {"eta": self.halving.eta, "rungs": self.halving.rungs},
            "objectives": [dataclasses.asdict(o) for o in self.space.objectives],
            "constraints": [dataclasses.asdict(c) for c in self.space.constraints],
            "archsearch_version": __version__,
        }


def jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


#: what a clash check compares (the version and the space's file path may differ)
_IDENTITY = ("space", "task", "profile", "train", "halving")


def settings_from(
    space: SearchSpace,
    *,
    task: str | None = None,
    task_options: dict[str, Any] | None = None,
    profile: Profile,
    eta: int | None = None,
    rungs: int | None = None,
    budget_tokens: int | None = None,
    budget_flops: float | None = None,
    draws: list[ModelConfig] | None = None,
) -> Settings:
    """Resolve the task, training recipe and halving of a search (all validated here);
    ``draws``: the space's :func:`sample_configs`, when the caller has drawn them already."""
    _check_task_section(space)
    name = task or space.task.get("name") or "lm"
    try:
        tcls = get_task(name, field="--task")
    except ConfigError as e:
        raise e.located(source=space.source) from None
    options = dict(space.task.get("options") or {}) if name == space.task.get("name", name) else {}
    options.update(task_options or {})
    _check_metrics(space, name)
    train_data = dict(space.train)
    halving_data = _halving_data(train_data.pop("halving", None), space.source)
    _apply_budget(train_data, budget_tokens, budget_flops, space.source)
    train_data.setdefault("compile", profile.compile)
    try:
        tcfg = from_dict(TrainConfig, train_data)
        halving = Halving(
            eta=check_int(
                "halving.eta", eta if eta is not None else halving_data.get("eta", 3), 2, 100
            ),
            rungs=check_int(
                "halving.rungs", rungs if rungs is not None else halving_data.get("rungs", 3), 1, 6
            ),
        )
    except ConfigError as e:
        raise e.located(prefix="train", source=space.source) from None
    tcfg = dataclasses.replace(tcfg, eval_at=tuple(halving.fractions()[:-1]))
    # the settings every model of the study must share (lm: one evaluation stride and held-out
    # size, the size following the fewest tokens a model of the space would train on)
    tokens = None if tcls.sets_seq_len else _fewest_tokens(space, tcfg, draws)
    options = tcls.comparable_options(options, space.seq_len, tokens)
    return Settings(space, name, options, profile, tcfg, halving)


def _fewest_tokens(
    space: SearchSpace, tcfg: TrainConfig, draws: list[ModelConfig] | None
) -> int | None:
    """The fewest training tokens a trial of ``space`` gets: the token budget, or under a FLOPs
    budget that of the costliest of 64 seeded draws from the space (one number per study)."""
    if tcfg.budget_flops is None:
        return fewest_tokens(tcfg, space.seq_len, [])
    return fewest_tokens(tcfg, space.seq_len, sample_configs(space) if draws is None else draws)


def _halving_data(data: Any, source: str | None) -> dict[str, Any]:
    """``train.halving``: a mapping with eta and/or rungs and nothing else."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("train.halving", data, "{eta: N, rungs: R}", source=source)
    for key, value in data.items():
        if key not in ("eta", "rungs"):
            raise ConfigError(f"train.halving.{key}", value, "one of eta, rungs", source=source)
    return data


def _check_task_section(space: SearchSpace) -> None:
    """``task:`` has a name (a string) and options (a mapping), nothing else."""
    for key, value in space.task.items():
        if key not in ("name", "options"):
            raise ConfigError(f"task.{key}", value, "one of name, options", source=space.source)
    name = space.task.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError("task.name", name, "a task name (text)", source=space.source)
    options = space.task.get("options")
    if options is not None and not isinstance(options, dict):
        raise ConfigError(
            "task.options", options, "a mapping of option: value", source=space.source
        )


def _apply_budget(
    train: dict[str, Any], tokens: int | None, flops: float | None, source: str | None
) -> None:
    """The budget of the space's ``train:`` block, overridden by ``--budget-tokens`` or
    ``--budget-flops`` (one of them); 200k tokens when neither says anything."""
    if tokens is not None and flops is not None:
        raise ConfigError(
            "--budget-flops", f"{flops:.4g}", "either it or --budget-tokens, not both"
        )
    if isinstance(train.get("budget_flops"), str):  # YAML reads 3e13 (no dot) as a string
        try:
            train["budget_flops"] = float(train["budget_flops"])
        except ValueError:
            raise ConfigError(
                "train.budget_flops",
                train["budget_flops"],
                "a number of FLOPs, e.g. 3.0e13",
                source=source,
            ) from None
    if train.get("budget_flops") is not None and train.get("budget_tokens") is not None:
        raise ConfigError(
            "train.budget_flops",
            train["budget_flops"],
            "either budget_flops or budget_tokens in one study, not both",
            source=source,
        )
    if tokens is not None:
        train.update(budget_tokens=tokens, budget_flops=None, budget_steps=None)
        train.update(budget_seconds=None)
    if flops is not None:
        train.update(budget_flops=flops, budget_tokens=None, budget_steps=None)
        train.update(budget_seconds=None)
    if train.get("budget_flops") is None:
        train.setdefault("budget_tokens", 200_000)


def _check_metrics(space: SearchSpace, task: str) -> None:
    """Every objective and constraint names a profiled metric or one the task reports."""
    reported = get_task(task).metrics
    for what, items in (("objectives", space.objectives), ("constraints", space.constraints)):
        for item in items:
            m = item.metric
            if not (is_metric(m) and is_profiled(m)) and m not in reported:
                raise ConfigError(
                    f"{what}.metric",
                    m,
                    f"a metric of the {task} task ({', '.join(reported)}) or a profiled one",
                    source=space.source,
                )


def check_same(stored: dict[str, Any], new: dict[str, Any], name: str) -> None:
    """A study with this name exists: it must have been made with the same settings."""
    stored = _upgraded(stored)
    diffs = [k for k in _IDENTITY if stored.get(k) != new.get(k)]
    if diffs:
        what = ", ".join(_first_diff(stored.get(k), new.get(k), k) for k in diffs)
        raise ConfigError(
            "--study",
            name,
            f"a new study name, or the settings of the existing study '{name}' (from "
            f"{stored.get('space_source', '?')}); they differ in {what}",
        )


def _upgraded(stored: dict[str, Any]) -> dict[str, Any]:
    """A record made before FLOPs budgets existed, read as the token-budget study it was."""
    train = stored.get("train")
    if not isinstance(train, dict) or "budget_mode" in train:
        return stored
    mode = "tokens" if train.get("budget_tokens") is not None else None
    mode = mode or ("steps" if train.get("budget_steps") is not None else "seconds")
    return {**stored, "train": {**train, "budget_flops": None, "budget_mode": mode}}


def _first_diff(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_diff(a.get(k), b.get(k), f"{path}.{k}")
    return f"{path} ({a!r} there, {b!r} now)"


def make_sampler(name: str, seed: int | None, n_trials: int) -> Any:
    """The sampler, seeded; start-up (random) trials scale with the study's size."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    startup = min(10, max(4, n_trials // 4))
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(4, startup)))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError("--sampler", name, "one of " + ", ".join(SAMPLERS))


def open_study(
    settings: Settings,
    storage: Any,
    name: str,
    *,
    sampler: str = "tpe",
    seed: int | None = 0,
    n_trials: int = 20,
) -> optuna.Study:
    """Create the study, or load it after checking it has the same settings; the sampler's seed
    is offset by the trials already there, so a resumed run does not replay its first draws."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    record = settings.record()
    exists = name in study_names(storage)
    if exists:
        loaded = optuna.load_study(study_name=name, storage=storage)
        stored = loaded.user_attrs.get(ATTR)
        if stored is None:
            raise ConfigError("--study", name, "a study made by archsearch (this one was not)")
        check_same(stored, record, name)
        if [d.name.lower() for d in loaded.directions] != settings.directions:
            raise ConfigError("--study", name, "a study with the same objective directions")
        offset = len(loaded.trials)
    else:
        offset = 0
    smp = make_sampler(sampler, None if seed is None else seed + offset, n_trials)
    if exists:
        study = optuna.load_study(study_name=name, storage=storage, sampler=smp)
        if study.metric_names is None:  # a study made before its objectives were named
            study.set_metric_names(settings.objectives)
        return study
    study = optuna.create_study(
        storage=storage, study_name=name, directions=settings.directions, sampler=smp
    )
    study.set_user_attr(ATTR, record)
    # the objectives' names, for optuna-dashboard and study.trials_dataframe() (not "values_0")
    study.set_metric_names(settings.objectives)
    return study


def load_settings(study: optuna.Study) -> dict[str, Any]:
    """The settings record a study was made with (as stored)."""
    rec = study.user_attrs.get(ATTR)
    if rec is None:
        raise ConfigError("study", study.study_name, "a study made by archsearch search")
    return rec


def settings_of(study: optuna.Study) -> Settings:
    """The settings a study was made with, rebuilt from its record (for workers that join)."""
    rec = load_settings(study)
    space = space_from_data(rec["space"], source=rec.get("space_source") or "<study>")
    try:
        profile = from_dict(Profile, dict(rec["profile"]))
    except ConfigError as e:
        raise e.located(prefix="profile", source=f"study {study.study_name}") from None
    settings = settings_from(
        space,
        task=rec["task"]["name"],
        task_options=rec["task"]["options"],
        profile=profile,
        eta=rec["halving"]["eta"],
        rungs=rec["halving"]["rungs"],
        budget_tokens=rec["train"].get("budget_tokens"),
        budget_flops=rec["train"].get("budget_flops"),
    )
    check_same(rec, settings.record(), study.study_name)
    return settings
