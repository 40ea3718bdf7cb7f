"""The theoretical FLOP exponents (the reference slopes of scaling plots) match the formulas."""

from __future__ import annotations

import pytest

from archsearch.errors import ConfigError
from archsearch.mixers import MixerContext, get_mixer, list_mixers
from archsearch.model.costs import model_cost
from archsearch.model.families import get_family, list_families
from archsearch.profiling.scaling import loglog_slope

BIG = [2**16, 2**18, 2**20]


def _mixer_cases() -> list[tuple[str, object]]:
    return [(k, c) for k in list_mixers() for c in get_mixer(k).example_configs(32)]


@pytest.mark.parametrize("kind, cfg", _mixer_cases(), ids=lambda x: getattr(x, "kind", x))
def test_mixer_exponent_is_the_asymptotic_slope_of_its_formula(kind: str, cfg: object) -> None:
    cls = get_mixer(kind)
    ys = []
    for T in BIG:
        ctx = MixerContext(d_model=32, max_seq_len=T)
        try:
            cfg.check(ctx, T)  # type: ignore[attr-defined]
        except ConfigError:
            pytest.skip(f"{cfg} cannot take T = {T}")
        ys.append(cls.inference_flops(cfg, ctx, T).dense)  # the forward flops_fwd reports
    slope = loglog_slope(BIG, ys)
    # T·log T counts as exponent 1: its log-log slope here is 1 + 1/ln(T) ≈ 1.08
    assert slope == pytest.approx(cls.flop_exponent(cfg), abs=0.1), (kind, cfg, slope)


@pytest.mark.parametrize("family", list_families())
def test_family_exponent_is_the_asymptotic_slope_of_its_cost(family: str) -> None:
    cls = get_family(family)
    for cfg, _ in cls.example_configs():
        cfg = cfg.replace(pos_encoding="rope") if cfg.pos_encoding == "learned" else cfg
        try:
            ys = [model_cost(cfg.replace(max_seq_len=T), T).forward_dense for T in BIG]
        except ConfigError:
            continue
        slope = loglog_slope(BIG, ys)
        assert slope == pytest.approx(cls.flop_exponent(cfg), abs=0.1), (family, cfg, slope)
