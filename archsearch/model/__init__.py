"""Model configs (per-layer block lists, YAML round trip), structural families, the models,
analytic costs.

Importing this package registers every built-in family (the import is the registration).
"""

# built-in families, one module each (import order = nothing but registration)
from archsearch.model import mh_perceiver, perceiver_ar, transformer  # noqa: E402, F401, I001
from archsearch.model.config import (
    BlockConfig,
    ModelConfig,
    dump_model_config,
    load_model_config,
    model_config_from_dict,
    model_config_to_dict,
)
from archsearch.model.families import (
    FamilyConfig,
    get_family,
    list_families,
    register_family,
    unregister_family,
)

__all__ = [
    "BlockConfig",
    "FamilyConfig",
    "ModelConfig",
    "dump_model_config",
    "get_family",
    "list_families",
    "load_model_config",
    "model_config_from_dict",
    "model_config_to_dict",
    "register_family",
    "unregister_family",
]
