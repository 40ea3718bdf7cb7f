"""The conformance suite every registered mixer must pass (driven by the registry).

Use it from a test module::

    from archsearch.testing.mixers import MixerConformance, conformance_cases
    import pytest

    @pytest.fixture(params=conformance_cases(), ids=lambda c: c.id)
    def case(request):
        return request.param

    class TestMixers(MixerConformance):
        pass

Every mixer registered when ``conformance_cases()`` runs is enrolled, with each of its
``example_configs``. What is checked, and how:

1. shape and dtype kept, for odd T (1, 7, 63) and float32/float64;
2. causality by gradient, in float64, for every position (T = 37 and 64): the gradient of
   ``y[:, t]`` with respect to ``x[:, j]`` is exactly 0 for every ``j > t``; plus a perturbation
   check that replaces the future with junk (catches wrap-around shifts);
3. finite, non-zero gradients on every parameter (no unused parameters);
4. seeded determinism;
5. analytic FLOPs vs ``FlopCounterMode`` (with archsearch's SDPA formulas, so the count does not
   depend on the torch version): the counter sees matmuls only and counts whole score blocks, so
   it must equal the analytic *dense-masked* matmul count exactly, on CPU and on meta, in train
   mode (``flops``) and in eval mode (``inference_flops``); the *exact* count (unmasked pairs
   only) must be ≤ the dense one;
6. config ↔ YAML round trip (alone and inside a model YAML);
7. the mixer's own limit equivalences (``TokenMixer.equivalences``) with shared weights;
8. invalid configs fail with a ConfigError naming the field;
9. for every config the mixer decodes (``supports_decode_for(cfg)``; for Combiner, variant fixed
   only): token-by-token ``step`` equals the eval-mode ``forward`` (float64), and the state holds
   exactly the ``decode_state`` numbers it reports.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import yaml

from archsearch.dataconf import from_dict
from archsearch.errors import ConfigError
from archsearch.mixers import MixerConfig, MixerContext, build_mixer, get_mixer, list_mixers
from archsearch.model.config import (
    BlockConfig,
    ModelConfig,
    dump_model_config,
    mixer_config_from_dict,
    parse_model_config,
)
from archsearch.profiling.counter import count_flops

D_MODEL = 32


@dataclass(frozen=True)
class Case:
    kind: str
    cfg: MixerConfig
    rope: bool

    @property
    def id(self) -> str:
        fields = ",".join(f"{k}={v}" for k, v in self.cfg.to_dict().items() if k != "kind")
        return f"{self.kind}[{fields}]{'-rope' if self.rope else ''}"

    def ctx(self, layer_idx: int = 0, n_layers: int = 1) -> MixerContext:
        return MixerContext(
            d_model=D_MODEL,
            layer_idx=layer_idx,
            n_layers=n_layers,
            max_seq_len=256,
            rope=self.rope,
        )

    def build(
        self, dtype: torch.dtype = torch.float64, seed: int = 0, device: str = "cpu"
    ) -> torch.nn.Module:
        torch.manual_seed(seed)
        with torch.device(device):
            m = build_mixer(self.cfg, self.ctx())
        return m.to(dtype)


def conformance_cases(pattern: str = "*") -> list[Case]:
    cases = []
    for kind in list_mixers(pattern):
        for i, cfg in enumerate(get_mixer(kind).example_configs(D_MODEL)):
            # RoPE on for the first example config: it must not break causality or counts
            cases.append(Case(kind, cfg, rope=(i == 0)))
    return cases


def _x(B: int, T: int, dtype: torch.dtype = torch.float64, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D_MODEL, generator=g, dtype=dtype)


def tensor_numel(state: Any) -> int:
    """Numbers held in the tensors of a decoding state (dataclasses, lists, tuples, dicts)."""
    if isinstance(state, torch.Tensor):
        return state.numel()
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return sum(tensor_numel(getattr(state, f.name)) for f in dataclasses.fields(state))
    if isinstance(state, (list, tuple)):
        return sum(tensor_numel(s) for s in state)
    if isinstance(state, dict):
        return sum(tensor_numel(s) for s in state.values())
    return 0


class MixerConformance:
    """Mix into a test class; needs a ``case`` fixture yielding :class:`Case`."""

    @pytest.mark.parametrize("T", [1, 7, 63])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_shape_and_dtype(self, case: Case, T: int, dtype: torch.dtype) -> None:
        m = case.build(dtype)
        y = m(_x(2, T, dtype))
        assert y.shape == (2, T, D_MODEL)
        assert y.dtype == dtype
        assert torch.isfinite(y).all()

    @pytest.mark.parametrize("T", [37, 64])
    def test_causal_by_gradient(self, case: Case, T: int) -> None:
        m = case.build()
        x = _x(1, T).requires_grad_(True)
        y = m(x)
        w = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(2))
        for t in range(T):
            (g,) = torch.autograd.grad((y[:, t] * w[:, t]).sum(), x, retain_graph=True)
            future = g[:, t + 1 :].abs().max().item() if t + 1 < T else 0.0
            assert future == 0.0, f"y[{t}] depends on future inputs (max |grad| = {future:g})"
            assert g[:, t].abs().max().item() > 0, f"y[{t}] ignores x[{t}]"

    def test_future_junk_does_not_leak(self, case: Case) -> None:
        m = case.build()
        T = 48
        x = _x(2, T)
        y = m(x)
        for t0 in (0, 5, 23, 40):
            x2 = x.clone()
            x2[:, t0 + 1 :] = 1e3 * torch.randn_like(x2[:, t0 + 1 :])
            y2 = m(x2)
            assert torch.equal(y[:, : t0 + 1], y2[:, : t0 + 1]), f"leak into positions <= {t0}"

    def test_gradients_finite_on_every_parameter(self, case: Case) -> None:
        m = case.build(torch.float32)
        m(_x(2, 29, torch.float32)).pow(2).mean().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None, f"{name} gets no gradient (unused parameter?)"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"

    def test_seeded_determinism(self, case: Case) -> None:
        x = _x(2, 19)
        y1 = case.build(seed=7)(x)
        y2 = case.build(seed=7)(x)
        y3 = case.build(seed=8)(x)
        assert torch.equal(y1, y2)
        assert not torch.equal(y1, y3), "the seed does not reach the parameters"

    @pytest.mark.parametrize("T", [1, 37, 64, 96])
    @pytest.mark.parametrize("device", ["cpu", "meta"])
    def test_flops_match_counter(self, case: Case, T: int, device: str) -> None:
        m = case.build(torch.float32, device=device)
        with torch.device(device):
            x = torch.randn(2, T, D_MODEL)
        cls = get_mixer(case.kind)
        # train mode runs the training forward (flops); eval mode the inference one
        for mode, formula in ((True, cls.flops), (False, cls.inference_flops)):
            m.train(mode)
            counted = count_flops(lambda: m(x)).total
            analytic = formula(case.cfg, case.ctx(), T)
            assert counted == 2 * analytic.matmul_dense, (
                f"FlopCounterMode {counted} != analytic dense {2 * analytic.matmul_dense} "
                f"(B=2, train mode {mode})"
            )
            assert analytic.core_exact <= analytic.core_dense
            assert analytic.exact <= analytic.dense

    def test_decode_state_is_counted(self, case: Case) -> None:
        cls = get_mixer(case.kind)
        s = [cls.decode_state(case.cfg, case.ctx(), T) for T in (16, 64)]
        assert all(isinstance(v, int) and v >= 0 for v in s)
        assert s[0] <= s[1], "decode state must not shrink with a longer context"

    @pytest.mark.parametrize("T", [6, 41])
    def test_streaming_decode_matches_forward(self, case: Case, T: int) -> None:
        cls = get_mixer(case.kind)
        if not cls.supports_decode_for(case.cfg):
            pytest.skip(f"{case.id} has no incremental decoding")
        m = case.build().eval()  # decoding is inference: it reproduces the eval-mode forward
        x = _x(2, T)
        with torch.no_grad():
            want = m(x)
            state = m.init_state(2, dtype=x.dtype, device=x.device, max_len=T)
            got = []
            for t in range(T):
                y_t, state = m.step(x[:, t : t + 1], state)
                assert y_t.shape == (2, 1, D_MODEL)
                got.append(y_t)
        torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=1e-12, atol=1e-12)
        held = tensor_numel(state)
        assert held == 2 * cls.decode_state(case.cfg, case.ctx(), T), (
            f"the state holds {held} numbers for B=2, T={T}; decode_state reports "
            f"{cls.decode_state(case.cfg, case.ctx(), T)} per sequence"
        )

    def test_config_yaml_round_trip(self, case: Case) -> None:
        d = yaml.safe_load(yaml.safe_dump(case.cfg.to_dict()))
        assert mixer_config_from_dict(d, prefix="mixer") == case.cfg
        model = ModelConfig(
            d_model=D_MODEL,
            pos_encoding="rope" if case.rope else "none",
            layers=(BlockConfig(mixer=case.cfg), BlockConfig(mixer=case.cfg, mlp_ratio=2.0)),
        )
        text = dump_model_config(model)
        assert parse_model_config(text) == model
        assert dump_model_config(parse_model_config(text)) == text

    @pytest.mark.parametrize("T", [24, 31])
    def test_limit_equivalences(self, case: Case, T: int) -> None:
        cls = get_mixer(case.kind)
        pairs = cls.equivalences(D_MODEL, T)
        if not pairs:
            pytest.skip(f"{case.kind} declares no limit equivalences")
        x = _x(2, T)
        for mine, other_kind, other in pairs:
            a = Case(case.kind, mine, case.rope).build()
            b = Case(other_kind, other, case.rope).build(seed=123)
            b.load_state_dict(a.state_dict())
            torch.testing.assert_close(a(x), b(x), rtol=1e-10, atol=1e-10)

    def test_invalid_configs_name_the_field(self, case: Case) -> None:
        for fields, bad in get_mixer(case.kind).invalid_configs():
            with pytest.raises(ConfigError) as info:
                from_dict(get_mixer(case.kind).Config, fields, prefix="mixer")
            assert info.value.field == f"mixer.{bad}", str(info.value)
            assert repr(fields[bad]) in str(info.value)

    @pytest.mark.gpu
    def test_cuda_matches_cpu(self, case: Case) -> None:
        """Same weights on CUDA and CPU give the same output (float32; CUDA kernels differ)."""
        m = case.build(torch.float32)
        x = _x(2, 45, torch.float32)
        y_cpu = m(x)
        y_gpu = m.cuda()(x.cuda()).cpu()
        torch.testing.assert_close(y_gpu, y_cpu, rtol=1e-3, atol=1e-4)
