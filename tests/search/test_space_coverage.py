"""No shipped space or example model samples a model that sees less than its window unless the
space says so: every sampled config sees all of ``seq_len``, or the space bounds
``receptive_field`` from below (a trial under the bound is infeasible before any training)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.errors import ConfigError
from archsearch.model.config import load_model_config
from archsearch.model.transformer import receptive_field
from archsearch.search.space import SPACES_DIR, build_config, load_space, parse_space

SHIPPED = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
MODELS = sorted((Path(__file__).resolve().parents[2] / "models").rglob("*.yaml"))


def _draws(space, n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(n):
        trial = study.ask()
        try:
            cfg = build_config(trial, space)
        except ConfigError:
            cfg = None
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        if cfg is not None:
            yield cfg


@pytest.mark.parametrize("name", SHIPPED)
def test_every_sampled_model_sees_its_window_or_the_space_says_so(name: str) -> None:
    space = load_space(name)
    T = space.seq_len
    floor = [c.min for c in space.constraints if c.metric == "receptive_field" and c.min]
    seen = 0
    for cfg in _draws(space, 60):
        seen += 1
        rf = receptive_field(cfg, T)
        assert rf <= T
        if rf < T:
            assert floor, f"{name}: {cfg.name or cfg} sees {rf} of {T} tokens, unconstrained"

    assert seen > 0


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_example_models_see_their_whole_window(path: Path) -> None:
    cfg = load_model_config(path)
    assert receptive_field(cfg, cfg.max_seq_len) == cfg.max_seq_len


def test_min_constraints_parse_and_measure_a_shortfall() -> None:
    space = load_space("quickstart")
    (c,) = [c for c in space.constraints if c.metric == "receptive_field"]
    assert c.min == space.seq_len and c.max is None
    assert c.value(128) == pytest.approx(0.5)
    assert c.value(256) == 0.0
    assert c.broken(192) == "receptive_field = 192 < 256"
    assert c.broken(256) is None


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("{metric: receptive_field, max: 10}", "constraints.0.metric"),
        ("{metric: params, min: 10}", "constraints.0.metric"),
        ("{metric: receptive_field, min: window}", "constraints.0.min"),
        ("{metric: receptive_field}", "constraints.0"),
    ],
)
def test_bad_bounds_are_one_line_errors(entry: str, field: str) -> None:
    text = (SPACES_DIR / "quickstart.yaml").read_text()
    start = text.index("constraints:")
    end = text.index("\n", text.index("\n", start) + 1)
    text = text[:start] + f"constraints:\n  - {entry}" + text[end:]
    with pytest.raises(ConfigError) as e:
        parse_space(text)
    assert e.value.field == field, str(e.value)
    assert "\n" not in str(e.value)
