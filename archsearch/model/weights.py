"""A trained model's weights as a ``.safetensors`` file next to its model file.

A model file (YAML) says what to build; its weights file says what the trained parameters were.
:func:`save_weights` writes a model's ``state_dict`` with ``safetensors`` (tied tensors, e.g. a
head tied to the embedding, are stored once and tied again on load), and records in the file's
header the model's architecture hash (:func:`architecture_hash`: the config without its name)
and the archsearch version. :func:`load_trained` rebuilds the model from the YAML and loads the
weights, refusing a pair whose hashes or tensors differ with a one-line :class:`ConfigError`.

``archsearch train --save-weights PATH`` and ``archsearch search --save-weights`` write them; the
search keeps every complete trial's under ``OUT/weights/`` and the report copies the front's
next to their exported model files (docs/search.md, "Reports").
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from archsearch import __version__
from archsearch.errors import ConfigError
from archsearch.model.config import ModelConfig, load_model_config, model_config_to_dict
from archsearch.model.transformer import LanguageModel, build_model

#: the header's ``format`` entry
FORMAT = "archsearch.weights/1"


def architecture_hash(cfg: ModelConfig) -> str:
    """SHA-256 of the model's config without its ``name``: equal for two model files that build
    the same architecture."""
    data = {k: v for k, v in model_config_to_dict(cfg).items() if k != "name"}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def save_weights(model: torch.nn.Module, cfg: ModelConfig, path: str | Path) -> Path:
    """Write ``model``'s parameters and buffers to ``path`` (a ``.safetensors`` file), with the
    architecture hash of ``cfg`` and the archsearch version in its header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "model_sha256": architecture_hash(cfg),
        "archsearch_version": __version__,
        "model_name": cfg.name or "",
    }
    save_model(model, str(path), metadata=meta)
    return path


def weights_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of a weights file (a one-line error if it is not one)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (OSError, SafetensorError) as e:
        raise ConfigError("weights", str(path), f"a .safetensors file ({e})") from None


def load_trained(
    yaml_path: str | Path, weights_path: str | Path | None = None, *, device: Any = None
) -> LanguageModel:
    """The trained model of a model file and its weights (default: the YAML's path with the
    suffix ``.safetensors``), in eval mode. A pair that does not belong together (another
    architecture's hash, missing or mis-shaped tensors) is a one-line :class:`ConfigError`."""
    cfg = load_model_config(yaml_path)
    weights = Path(weights_path) if weights_path else Path(yaml_path).with_suffix(".safetensors")
    if not weights.is_file():
        raise ConfigError("weights", str(weights), "an existing .safetensors file")
    meta = weights_metadata(weights)
    want = architecture_hash(cfg)
    if meta.get("model_sha256", want) != want:
        raise ConfigError(
            "weights",
            str(weights),
            f"weights saved for the model of {yaml_path} (they were saved for model "
            f"{meta.get('model_name') or '?'!r} of another architecture: hash "
            f"{meta['model_sha256'][:12]}, the file's is {want[:12]})",
        )
    model = build_model(cfg)
    try:
        load_model(model, str(weights), strict=True)
    except (RuntimeError, SafetensorError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            "weights", str(weights), f"the tensors of the model of {yaml_path} ({first})"
        ) from None
    if device is not None:
        model = model.to(device)
    return model.eval()
