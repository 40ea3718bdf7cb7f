"""The conformance suite every registered model family must pass (driven by the registry).

Use it from a test module::

    from archsearch.testing.families import FamilyConformance, family_cases
    import pytest

    @pytest.fixture(params=family_cases(), ids=lambda c: c.id)
    def case(request):
        return request.param

    class TestFamilies(FamilyConformance):
        pass

Every family registered when ``family_cases()`` runs is enrolled with each of its
``example_configs`` (tiny ``(ModelConfig, T)`` pairs). What is checked, and how:

1. shapes: logits ``(B, S, V)`` for the last ``S = n_scored(T)`` positions; ``scored_positions``;
2. causality over every scored position, by float64 gradients with respect to the input
   embeddings: the logits of the row at position p have exactly zero gradient for inputs after p,
   and a non-zero one at p; rows the stack keeps but does not score (V1/V2 context, V3 compressed
   slots) must not depend on any scored (latent) input at all; plus a perturbation check that
   replaces the future tokens with junk;
3. finite, non-zero gradients on every parameter (training mode, so training-only paths run);
4. seeded determinism;
5. analytic FLOPs vs ``FlopCounterMode`` on CPU and on meta: the counter sees matmuls only and
   whole score blocks, so it must equal ``model_cost(...).counter_visible`` exactly; the exact
   count must be ≤ the dense one;
6. model YAML round trip (load ∘ dump is the identity, dump ∘ load ∘ dump gives the same text);
7. loss positions: only the S scored positions contribute, targets shifted by exactly one;
8. incremental decoding (``step``) equals ``forward`` where the model supports it;
9. invalid configs fail with a ConfigError naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError
from archsearch.model.config import ModelConfig, dump_model_config, parse_model_config
from archsearch.model.costs import model_cost
from archsearch.model.families import get_family, list_families
from archsearch.model.transformer import build_model
from archsearch.profiling.counter import count_flops


@dataclass(frozen=True)
class FamilyCase:
    kind: str
    cfg: ModelConfig
    seq_len: int
    index: int

    @property
    def id(self) -> str:
        mixers = "+".join(dict.fromkeys(b.mixer.kind for b in self.cfg.layers))
        return f"{self.kind}[{self.index}]-{mixers}-T{self.seq_len}"

    def build(
        self, dtype: torch.dtype = torch.float64, seed: int = 0, device: str = "cpu"
    ) -> torch.nn.Module:
        torch.manual_seed(seed)
        return build_model(self.cfg, device=device).to(dtype).eval()

    def idx(self, batch: int = 2, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, self.cfg.vocab_size, (batch, self.seq_len), generator=g)


def family_cases(pattern: str = "*") -> list[FamilyCase]:
    cases = []
    for kind in list_families(pattern):
        for i, (cfg, T) in enumerate(get_family(kind).example_configs()):
            cases.append(FamilyCase(kind, cfg, T, i))
    return cases


class FamilyConformance:
    """Mix into a test class; needs a ``case`` fixture yielding :class:`FamilyCase`."""

    def test_shapes_and_scored_positions(self, case: FamilyCase) -> None:
        m = case.build(torch.float32)
        T, S, V = case.seq_len, case.cfg.n_scored(case.seq_len), case.cfg.vocab_size
        assert 1 <= S <= T
        logits = m(case.idx())
        assert logits.shape == (2, S, V)
        assert torch.isfinite(logits).all()
        assert list(m.scored_positions(T)) == list(range(T - S, T))
        h = m.hidden(m.embed(case.idx()))
        assert h.shape[0] == 2 and h.shape[1] >= S and h.shape[2] == case.cfg.d_model

    def test_causal_over_scored_positions(self, case: FamilyCase) -> None:
        m = case.build()
        T, S = case.seq_len, case.cfg.n_scored(case.seq_len)
        x = m.embed(case.idx(batch=1)).detach().requires_grad_(True)
        h = m.hidden(x)
        U = h.shape[1]
        logits = m.logits(h, S)
        g2 = torch.Generator().manual_seed(2)
        w = torch.randn(logits.shape, dtype=logits.dtype, generator=g2)
        for s in range(S):
            p = T - S + s
            (g,) = torch.autograd.grad((logits[:, s] * w[:, s]).sum(), x, retain_graph=True)
            future = g[:, p + 1 :].abs().max().item() if p + 1 < T else 0.0
            assert future == 0.0, f"scored row {s} (position {p}) sees the future ({future:g})"
            assert g[:, p].abs().max().item() > 0, f"scored row {s} ignores its own input {p}"
        # rows kept but not scored (context / compressed slots) must not read any latent input
        wh = torch.randn(h.shape, dtype=h.dtype, generator=torch.Generator().manual_seed(3))
        for r in range(U - S):
            (g,) = torch.autograd.grad((h[:, r] * wh[:, r]).sum(), x, retain_graph=True)
            leak = g[:, T - S :].abs().max().item()
            assert leak == 0.0, f"context row {r} depends on a latent input ({leak:g})"
            assert g[:, : T - S].abs().max().item() > 0, f"context row {r} reads no context"

    def test_future_junk_does_not_leak(self, case: FamilyCase) -> None:
        m = case.build()
        T, S = case.seq_len, case.cfg.n_scored(case.seq_len)
        idx = case.idx()
        base = m(idx)
        g = torch.Generator().manual_seed(5)
        for s in sorted({0, S // 2, S - 2} & set(range(S - 1))):
            p = T - S + s
            idx2 = idx.clone()
            idx2[:, p + 1 :] = torch.randint(0, case.cfg.vocab_size, (2, T - p - 1), generator=g)
            out = m(idx2)
            assert torch.equal(base[:, : s + 1], out[:, : s + 1]), f"leak into position <= {p}"
            assert not torch.equal(base[:, s + 1 :], out[:, s + 1 :])

    def test_gradients_finite_on_every_parameter(self, case: FamilyCase) -> None:
        m = case.build(torch.float32).train()
        idx = case.idx()
        m.loss(idx, idx.roll(-1, dims=1)).backward()
        for name, p in m.named_parameters():
            assert p.grad is not None, f"{name} gets no gradient (unused parameter?)"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"

    def test_seeded_determinism(self, case: FamilyCase) -> None:
        idx = case.idx()
        y1 = case.build(seed=7)(idx)
        y2 = case.build(seed=7)(idx)
        y3 = case.build(seed=8)(idx)
        assert torch.equal(y1, y2)
        assert not torch.equal(y1, y3), "the seed does not reach the parameters"

    @pytest.mark.parametrize("device", ["cpu", "meta"])
    def test_flops_match_counter(self, case: FamilyCase, device: str) -> None:
        T = case.seq_len
        m = case.build(torch.float32, device=device)
        with torch.device(device):
            idx = torch.zeros(2, T, dtype=torch.long)
        counted = count_flops(lambda: m(idx)).total
        cost = model_cost(case.cfg, T)
        assert counted == 2 * cost.counter_visible, (
            f"FlopCounterMode {counted} != analytic dense {2 * cost.counter_visible} (B=2)"
        )
        assert cost.forward_exact <= cost.forward_dense
        for lc in cost.layers:
            assert lc.mixer.core_exact <= lc.mixer.core_dense, f"layer {lc.index}"
        S = case.cfg.n_scored(T)
        assert cost.head == 2 * S * case.cfg.d_model * case.cfg.vocab_size
        assert isinstance(cost.decode_state, int) and cost.decode_state >= 0

    def test_model_yaml_round_trip(self, case: FamilyCase) -> None:
        text = dump_model_config(case.cfg)
        again = parse_model_config(text)
        assert again == case.cfg
        assert dump_model_config(again) == text

    def test_loss_only_on_scored_positions(self, case: FamilyCase) -> None:
        m = case.build()
        T, S, V = case.seq_len, case.cfg.n_scored(case.seq_len), case.cfg.vocab_size
        idx = case.idx()
        targets = idx.roll(-1, dims=1)  # position t predicts token t + 1
        loss = m.loss(idx, targets)
        logits = m(idx)
        want = F.cross_entropy(logits.flatten(0, 1).float(), targets[:, T - S :].flatten())
        torch.testing.assert_close(loss, want, rtol=0, atol=0)
        torch.testing.assert_close(m.loss(idx, targets[:, T - S :]), loss, rtol=0, atol=0)
        # targets of unscored positions do not matter; every scored one does
        if S < T:
            t2 = targets.clone()
            t2[:, : T - S] = (t2[:, : T - S] + 1) % V
            assert torch.equal(m.loss(idx, t2), loss)
        for s in (0, S - 1):
            t2 = targets.clone()
            t2[:, T - S + s] = (t2[:, T - S + s] + 1) % V
            assert not torch.equal(m.loss(idx, t2), loss), f"scored position {T - S + s} ignored"

    def test_incremental_decode_equals_forward(self, case: FamilyCase) -> None:
        m = case.build()
        if not m.can_decode():
            pytest.skip(f"{case.kind} (with these layers) has no incremental decoding")
        P = min(case.seq_len, m.decode_limit() or case.seq_len)
        idx = case.idx()[:, :P]
        full = m(idx)
        assert full.shape[1] == P, "a prompt that fits the decode limit is scored everywhere"
        state = m.init_state(2, torch.float64, "cpu")
        steps = []
        for t in range(P):
            y, state = m.step(idx[:, t : t + 1], state)
            steps.append(y)
        torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-10, atol=1e-10)

    def test_invalid_configs_name_the_field(self, case: FamilyCase) -> None:
        for text, field in get_family(case.kind).invalid_configs():
            with pytest.raises(ConfigError) as info:
                parse_model_config(text, source="m.yaml")
            assert info.value.field == field, str(info.value)
            assert info.value.source == "m.yaml"
