"""FLOPs three ways (archsearch.profiling.flops): the analytic formulas, FlopCounterMode and fvcore
agree within 1% on every registered mixer at T = 256 and 4096 and on every family's examples;
the report says what shipped fvcore misses (SDPA's quadratic term) and why a counter differs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from archsearch.errors import ConfigError
from archsearch.mixers import MixerConfig, MixerContext, get_mixer, list_mixers, mixer_config
from archsearch.model.config import BlockConfig, ModelConfig
from archsearch.model.families import get_family, list_families
from archsearch.profiling.flops import (
    BACKWARD_FACTOR,
    TOLERANCE,
    FlopsComparison,
    compare_flops,
    compare_mixer_flops,
)

D_MODEL = 32
LENGTHS = (256, 4096)
CHECKED = ("fcm", "fcm_matmul", "fcm_fwd_bwd", "fvcore")


@dataclass(frozen=True)
class MixerCase:
    kind: str
    index: int
    cfg: MixerConfig
    seq_len: int

    @property
    def ctx(self) -> MixerContext:
        # RoPE on the first example config, as in the conformance suite: it must not change counts
        return MixerContext(d_model=D_MODEL, max_seq_len=max(LENGTHS), rope=self.index == 0)

    @property
    def id(self) -> str:
        return f"{self.kind}[{self.index}]-T{self.seq_len}"


def _accepts(cfg: MixerConfig, ctx: MixerContext, seq_len: int) -> bool:
    try:
        cfg.check(ctx, seq_len)
    except ConfigError:
        return False
    return True


def mixer_cases() -> list[MixerCase]:
    """Every example config of every registered mixer at every length it accepts."""
    cases = []
    for kind in list_mixers():
        for i, cfg in enumerate(get_mixer(kind).example_configs(D_MODEL)):
            for T in LENGTHS:
                case = MixerCase(kind, i, cfg, T)
                if _accepts(cfg, case.ctx, T):
                    cases.append(case)
    return cases


def _assert_agree(c: FlopsComparison, names: tuple[str, ...] = CHECKED) -> None:
    for name in names:
        r = c.counters[name]
        assert r.ok, f"{c.subject} T={c.seq_len}: {r.reason}"
        assert abs(r.rel_diff) <= TOLERANCE
    assert c.ok


def test_every_mixer_kind_has_a_config_at_both_lengths():
    runs = {(case.kind, case.index) for case in mixer_cases() if case.seq_len == LENGTHS[0]}
    both = {(c.kind, c.index) for c in mixer_cases() if c.seq_len == LENGTHS[1]} & runs
    assert {kind for kind, _ in both} == set(list_mixers())


@pytest.mark.parametrize("case", mixer_cases(), ids=lambda c: c.id)
def test_three_counters_agree_on_every_mixer(case: MixerCase):
    c = compare_mixer_flops(case.cfg, case.ctx, case.seq_len)
    _assert_agree(c)
    # the reference of each checked counter is what the brief says it is
    assert c.counters["fcm"].reference == c.counters["fvcore"].reference == c.analytic.dense
    assert c.counters["fcm_matmul"].reference == c.analytic.matmul
    assert c.analytic.exact <= c.analytic.dense


def _mixing_cases() -> list[MixerCase]:
    return [
        c
        for c in mixer_cases()
        if c.seq_len == LENGTHS[0] and get_mixer(c.kind).flops(c.cfg, c.ctx, 1).elementwise
    ]


@pytest.mark.parametrize("case", _mixing_cases(), ids=lambda c: c.id)
def test_elementwise_mixing_is_counted_exactly(case: MixerCase):
    # within 1% would hide a wrong elementwise rule next to a projection; the counts are exact
    c = compare_mixer_flops(case.cfg, case.ctx, case.seq_len, backward=False)
    assert c.counters["fcm"].flops == c.counters["fvcore"].flops == c.analytic.dense
    assert c.counters["fcm_matmul"].flops == c.analytic.matmul < c.analytic.dense


@pytest.mark.parametrize(
    ("kind", "index"),
    [(k, i) for k in list_families() for i in range(len(get_family(k).example_configs()))],
)
def test_three_counters_agree_on_every_family_example(kind: str, index: int):
    cfg, T = get_family(kind).example_configs()[index]
    _assert_agree(compare_flops(cfg, T, batch=2))  # batch 2: every count scales with it


def _softmax_model(layers: int = 2) -> ModelConfig:
    block = BlockConfig(mixer=mixer_config("softmax", n_heads=4))
    return ModelConfig(d_model=64, vocab_size=128, max_seq_len=512, layers=(block,) * layers)


def test_shipped_fvcore_misses_exactly_the_sdpa_term():
    cfg = _softmax_model()
    c = compare_flops(cfg, 256)
    _assert_agree(c)
    core = c.analytic.core_dense
    assert core == 2 * 4 * 64 * 256 * 256  # 2 layers × 4·D·T²
    assert c.missed_by_fvcore_default == core  # to the FLOP
    assert c.missed_by_fvcore_default_by_op == {"scaled_dot_product_attention": core}
    default = c.counters["fvcore_default"]
    assert not default.checked and not default.ok
    assert default.flops == 2 * default.details["macs"]  # its MACs, converted
    assert "aten::scaled_dot_product_attention" in {w.op for w in default.warnings}
    # what it reports = ours − the SDPA term + its LayerNorm MACs (5 per element, × 2)
    assert c.extra_in_fvcore_default == c.extra_in_fvcore_default_by_op["layer_norm"]
    assert c.extra_in_fvcore_default == 2 * 5 * 256 * 64 * (2 * 2 + 1)
    assert default.flops == c.counters["fvcore"].flops - core + c.extra_in_fvcore_default
    assert "scaled_dot_product_attention" in default.reason
    assert "fvcore alone misses" in c.format()
    # the quadratic term: twice the length, four times what fvcore misses
    assert compare_flops(cfg, 512, backward=False).missed_by_fvcore_default == 4 * core


def test_hsm_ab_elementwise_mixing_is_counted_by_the_convention_only():
    hsm = BlockConfig(mixer=mixer_config("hsm", mixing="ab", coverage="cycle"))
    soft = BlockConfig(mixer=mixer_config("softmax", n_heads=2))
    cfg = ModelConfig(d_model=32, vocab_size=64, max_seq_len=512, layers=(hsm, soft, hsm))
    T = 256
    c = compare_flops(cfg, T)
    _assert_agree(c)
    mixing = 2 * 3 * T * 32  # two ab layers, 3·T·D each
    assert c.analytic.elementwise == mixing
    # FlopCounterMode at matmul level misses the mixing; our convention count includes it
    assert c.counters["fcm_matmul"].flops == c.analytic.matmul == c.analytic.dense - mixing
    assert c.counters["fcm"].flops == c.counters["fvcore"].flops == c.analytic.dense
    assert c.counters["fcm_matmul"].details["missed_elementwise_mixing"] == mixing
    # shipped fvcore has no handle for the mixing ops at all
    assert c.missed_by_fvcore_default_by_op["mul"] == 2 * 2 * T * 32
    assert c.missed_by_fvcore_default_by_op["add"] == 2 * T * 32
    # residual additions are elementwise too, but outside the mixers: reported, not counted
    c = compare_flops(cfg.replace(layers=(hsm, hsm)), T, backward=False)
    _assert_agree(c, ("fcm", "fvcore"))
    residual = ("add", 4, 4 * T * 32)  # two per block
    outside = [
        (w.op, w.calls, w.elements) for w in c.counters["fcm"].warnings if "outside" in w.why
    ]
    assert outside == [residual]
    outside = [
        (w.op, w.calls, w.elements) for w in c.counters["fvcore"].warnings if "outside" in w.why
    ]
    assert outside == [("aten::" + residual[0], *residual[1:])]


def test_fused_sdpa_backward_is_two_and_a_half_forward_on_cpu():
    # on CPU the fused kernel runs (on meta, SDPA takes the math path: bmm's, 2×)
    cfg = mixer_config("softmax", n_heads=2)
    c = compare_mixer_flops(cfg, MixerContext(d_model=D_MODEL), 64, device="cpu", fvcore=False)
    _assert_agree(c, ("fcm", "fcm_matmul", "fcm_fwd_bwd"))
    d = c.counters["fcm_fwd_bwd"].details
    kernel = next(op for op in d["forward_by_op"] if "scaled_dot_product" in op)
    assert BACKWARD_FACTOR[kernel] == 2.5
    fwd = d["forward_by_op"][kernel]
    assert fwd == c.analytic.core_dense
    assert d["forward_backward_by_op"][kernel + "_backward"] == 5 * fwd // 2
    # so training counts more than 3 × forward: 3 × projections + 3.5 × the core
    want = 3 * (c.analytic.dense - fwd) + 7 * fwd // 2
    assert c.counters["fcm_fwd_bwd"].flops == want
    assert d["rel_diff_to_training_convention"] > 0

    meta = compare_mixer_flops(cfg, MixerContext(d_model=D_MODEL), 64, fvcore=False)
    assert meta.counters["fcm_fwd_bwd"].details["forward_by_op"].keys() == {"mm", "bmm"}
    assert meta.counters["fcm_fwd_bwd"].flops == meta.analytic.training_dense


def test_a_wrong_formula_is_named_in_the_reason(monkeypatch: pytest.MonkeyPatch):
    cls = get_mixer("softmax")
    right = cls.flops

    def half_core(cfg, ctx, seq_len):  # a planted bug: the attention core at half
        f = right(cfg, ctx, seq_len)
        return type(f)(f.projections, f.core_exact // 2, f.core_dense // 2)

    monkeypatch.setattr(cls, "flops", staticmethod(half_core))
    c = compare_flops(_softmax_model(), 256, backward=False)
    assert not c.ok
    for name in ("fcm", "fvcore"):
        reason = c.counters[name].reason
        assert "blocks.0.mixer (softmax)" in reason and "blocks.1.mixer (softmax)" in reason
        assert "outside the mixers" not in reason
    assert any("blocks.0.mixer" in r for r in c.reasons)


def test_a_counter_that_cannot_run_is_reported(monkeypatch: pytest.MonkeyPatch):
    import archsearch.profiling.fvcore_counter as fvc

    def broken(*args, **kwargs):
        raise RuntimeError("trace failed")

    monkeypatch.setattr(fvc, "count_fvcore", broken)
    c = compare_mixer_flops(mixer_config("softmax"), MixerContext(d_model=D_MODEL), 32)
    r = c.counters["fvcore"]
    assert r.flops is None and not r.ok and not c.ok
    assert "trace failed" in r.error and "could not run" in r.reason


def test_uncounted_ops_are_warnings_with_calls_and_elements():
    cfg = ModelConfig(
        d_model=32,
        vocab_size=64,
        max_seq_len=64,
        activation="relu",  # fvcore's ignore list counts relu as free: we record it
        layers=(BlockConfig(mixer=mixer_config("softmax", n_heads=2)),),
    )
    c = compare_flops(cfg, 16)
    fcm = {w.op: w for w in c.counters["fcm"].warnings}
    assert fcm["relu"].calls == 1 and fcm["relu"].elements == 16 * 128
    assert fcm["native_layer_norm"].calls == 3
    assert {"_safe_softmax", "add", "mul"} <= fcm.keys()  # SDPA's math path, RoPE, residuals
    fv = {w.op: w for w in c.counters["fvcore"].warnings}
    assert fv["aten::relu"].elements == 16 * 128
    assert fv["aten::layer_norm"].calls == 3 and fv["aten::layer_norm"].elements is None
    assert "aten::embedding" not in fv  # a look-up: free, not a warning
    bwd = {w.op for w in c.counters["fcm_fwd_bwd"].warnings}
    assert {"threshold_backward", "native_layer_norm_backward"} <= bwd


def test_report_is_json_and_text():
    c = compare_mixer_flops(mixer_config("hsm", mixing="gated"), MixerContext(d_model=32), 64)
    d = json.loads(json.dumps(c.to_dict()))
    assert d["ok"] and d["tolerance"] == TOLERANCE
    assert set(d["counters"]) == {*CHECKED, "fvcore_default"}
    assert d["analytic"]["training_dense"] == 3 * d["analytic"]["dense"]
    assert d["counters"]["fvcore_default"]["checked"] is False
    text = c.format(warnings=True)
    assert "FlopCounterMode forward+backward" in text and "warning [fcm]" in text
