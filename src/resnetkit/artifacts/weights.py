"""Writing weights: plain state_dicts (``save_weights``) and self-describing exports
(``export_weights``: the model config and dataset facts in the safetensors metadata)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import ResNetBase, WeightsError
from .atomic import atomic_write
from .cards import ModelCard, model_card


def save_weights(
    model_or_sd: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save weights as ``.safetensors`` (recommended) or ``.pth``/``.pt``, atomically."""
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, nn.Module) else dict(model_or_sd)
    sd = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        meta = {k: str(v) for k, v in (metadata or {}).items()}
        return atomic_write(path, lambda tmp: save_file(sd, tmp, metadata=meta))
    if path.suffix in (".pth", ".pt", ".bin"):
        return atomic_write(path, lambda tmp: torch.save(sd, tmp))
    raise WeightsError(f"{path}: unknown weights format (use .safetensors, .pth or .pt)")


def export_weights(
    model: ResNetBase, path: str | os.PathLike[str], dataset: ModelCard | Mapping[str, Any] | None = None
) -> Path:
    """Save weights as safetensors with the model config and its record (``ModelCard``: the
    model's own unless ``dataset`` gives one, or the dict of one) in the metadata, so
    ``load_model`` needs nothing else. The flat data facts stay under ``dataset`` too, for
    readers of older files."""
    if dataset is None:
        card = model_card(model)
    elif isinstance(dataset, ModelCard):
        card = dataset
    else:
        card = ModelCard.from_dict(dataset, str(path), model_card(model).task)
    meta = {
        "model_cfg": json.dumps(model.model_cfg),
        "card": json.dumps(card.to_dict()),
        "dataset": json.dumps(card.dataset_facts()),
    }
    return save_weights(model, path, metadata=meta)
