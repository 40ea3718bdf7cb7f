"""Model configs (per-layer block lists, YAML round trip), the decoder LM, analytic costs."""

from archsearch.model.config import (
    BlockConfig,
    ModelConfig,
    dump_model_config,
    load_model_config,
    model_config_from_dict,
    model_config_to_dict,
)

__all__ = [
    "BlockConfig",
    "ModelConfig",
    "dump_model_config",
    "load_model_config",
    "model_config_from_dict",
    "model_config_to_dict",
]
