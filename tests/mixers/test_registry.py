"""Registry behaviour, and proof that the conformance suite catches a causality leak."""

from dataclasses import dataclass

import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.mixers import (
    MixerContext,
    get_mixer,
    list_mixers,
    mixer_config,
    register_mixer,
    unregister_mixer,
)
from archsearch.mixers.s2attn import ShiftedSparseAttention
from archsearch.testing.mixers import Case, MixerConformance


def test_builtin_mixers_registered():
    assert {"softmax", "sliding_window", "s2attn"} <= set(list_mixers())
    assert list_mixers("s*") == sorted(n for n in list_mixers() if n.startswith("s"))


def test_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="already registered"):

        @register_mixer("softmax")
        class Again(ShiftedSparseAttention):
            @dataclass(frozen=True, kw_only=True)
            class Config(ShiftedSparseAttention.Config):
                pass


def test_unknown_name_lists_registered():
    with pytest.raises(ConfigError) as info:
        get_mixer("sofmax")
    msg = str(info.value)
    assert "'sofmax'" in msg
    for name in list_mixers():
        assert name in msg


def test_unknown_field_and_wrong_type():
    with pytest.raises(ConfigError, match=r"n_head: got 4; allowed: one of the fields"):
        mixer_config("softmax", n_head=4)
    with pytest.raises(ConfigError, match=r"n_heads: got 'four'; allowed: an integer"):
        mixer_config("softmax", n_heads="four")


class _RolledS2(ShiftedSparseAttention):
    """The paper's pseudo-code: roll the shifted heads by -G/2 (wraps around: leaks)."""

    @dataclass(frozen=True, kw_only=True)
    class Config(ShiftedSparseAttention.Config):
        pass

    def attend(self, q, k, v):
        from archsearch.ops.grouped import grouped_causal_attention

        G, a = self.cfg.group_size, self.n_heads // 2
        roll = [t[:, a:].roll(-G // 2, dims=2) for t in (q, k, v)]
        shifted = grouped_causal_attention(*roll, G).roll(G // 2, dims=2)
        return torch.cat([grouped_causal_attention(q[:, :a], k[:, :a], v[:, :a], G), shifted], 1)


def test_conformance_suite_catches_the_rolled_s2attn_leak():
    register_mixer("rolled_s2")(_RolledS2)
    try:
        case = Case("rolled_s2", _RolledS2.Config(n_heads=2, group_size=8), rope=False)
        with pytest.raises(AssertionError, match="depends on future inputs"):
            MixerConformance().test_causal_by_gradient(case, 64)
        with pytest.raises(AssertionError, match="leak"):
            MixerConformance().test_future_junk_does_not_leak(case)
    finally:
        unregister_mixer("rolled_s2")
    assert "rolled_s2" not in list_mixers()


def test_context_carries_layer_index():
    ctx = MixerContext(d_model=16, layer_idx=3, n_layers=6)
    m = get_mixer("softmax")(mixer_config("softmax", n_heads=2), ctx)
    assert m.ctx.layer_idx == 3 and m.ctx.n_layers == 6
