"""Token mixers: the contract, the registry, and one module per mixer.

Importing this package registers every built-in mixer (the import is the registration).
"""

# built-in mixers, one module each (import order = nothing but registration)
from archsearch.mixers import combiner, ecp, hsm, s2attn, sliding_window, softmax  # noqa: E402, F401, I001
from archsearch.mixers._base import MixerConfig, MixerContext, MixerFlops, TokenMixer
from archsearch.mixers._reach import interval_reads, offset_reads, prefix_reads
from archsearch.mixers._registry import (
    build_mixer,
    get_mixer,
    list_mixers,
    mixer_config,
    mixer_label,
    register_mixer,
    unregister_mixer,
)

__all__ = [
    "MixerConfig",
    "MixerContext",
    "MixerFlops",
    "TokenMixer",
    "build_mixer",
    "get_mixer",
    "interval_reads",
    "list_mixers",
    "mixer_config",
    "mixer_label",
    "offset_reads",
    "prefix_reads",
    "register_mixer",
    "unregister_mixer",
]
