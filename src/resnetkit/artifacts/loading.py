"""``load_model``: one call from a pretrained tag, a checkpoint, a run folder or a weights file to a
model ready for inference, with what it needs to know about its inputs."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import ResNetBase, WeightsError, create_model, is_model, load_weights, read_state_dict
from ..models.registry import get_pretrained_cfg, split_model_name
from ..models.weights import first_line, guess_architecture
from .checkpoint import checkpoint_weights, is_checkpoint, load_checkpoint
from .runs import run_checkpoint

Source = str | os.PathLike[str]


def _resolve_path(source: Source) -> Path | None:
    path = Path(source)
    if path.is_dir():
        return run_checkpoint(path)
    return path if path.is_file() else None


def load_model(source: Source, device: str | torch.device = "cpu") -> ResNetBase:
    """A model in eval mode from ``"resnet20.fashion_mnist"`` (shipped weights), a training
    checkpoint or run folder, or a ``.safetensors`` file saved by resnetkit (its metadata holds the
    model config). ``model.pretrained_cfg`` then holds the dataset's classes, mean, std and size."""
    path = _resolve_path(source)
    if path is None:
        if is_model(str(source)):
            return create_model(str(source), pretrained=True).to(device).eval()
        raise WeightsError(f"{source}: neither a file, a run folder, nor a pretrained tag (see `resnetkit info`)")
    if path.suffix == ".safetensors":
        model_cfg, meta = _safetensors_config(path)
        model = _build(model_cfg, path)
        load_weights(model, read_state_dict(path))
        model.pretrained_cfg = meta
    else:
        ckpt = load_checkpoint(path)
        model = _build(ckpt["model_cfg"], path)
        load_weights(model, checkpoint_weights(ckpt))
        # What the run was trained on, and its config in the place a shipped card keeps it.
        model.pretrained_cfg = {**(ckpt.get("dataset") or {}), "training": {"config": ckpt.get("config") or {}}}
    return model.to(device).eval()


def _build(model_cfg: dict[str, Any], path: Path) -> ResNetBase:
    cfg = dict(model_cfg)
    name = cfg.pop("name", None)
    if not name:
        raise WeightsError(f"{path}: holds no model config; use create_model(name, weights='{path}')")
    return create_model(name, **cfg)


def _safetensors_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors' SafetensorError for anything that is not one
        raise WeightsError(f"{path}: not a safetensors file, or a damaged one ({first_line(e)})") from None
    if "model_cfg" not in meta:
        raise WeightsError(f"{path}: plain weights without a model config; use create_model(name, weights='{path}')")
    try:
        model_cfg, dataset = json.loads(meta["model_cfg"]), json.loads(meta.get("dataset", "{}"))
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: its metadata is not valid JSON ({e})") from None
    if not isinstance(model_cfg, dict) or not isinstance(dataset, dict):
        raise WeightsError(f"{path}: its metadata does not describe a model")
    return model_cfg, dataset


def load_pretrained_into(model: nn.Module, source: Source, new_head: bool = False) -> nn.Module:
    """Fine-tuning: the weights of a tag, checkpoint or file into ``model``; a head of another
    size (any head, with ``new_head``) stays fresh and the first conv is adapted to the model's
    input channels."""
    path = _resolve_path(source)
    if path is None:
        if not is_model(str(source)):
            raise WeightsError(f"{source}: neither a weights file, a checkpoint nor a pretrained tag")
        sd = load_model(source).state_dict()
    elif path.suffix in (".pt", ".pth") and is_checkpoint(path):
        sd = checkpoint_weights(load_checkpoint(path))
    else:
        sd = read_state_dict(path)
    return load_weights(model, sd, new_head=new_head)


# What a source's model config says about its data and head; a model for new data sets these anew.
_DATA_KEYS = ("name", "num_classes", "in_chans")


def source_architecture(source: Source, model_name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The registered model name and ``create_model`` options that rebuild ``source``'s network
    (a pretrained tag, a checkpoint or run folder, a resnetkit ``.safetensors``), less its head
    size and input channels. A plain state_dict (torchvision's, timm's) holds no architecture:
    ``model_name`` names it, and its keys are checked against that model when they are loaded."""
    path = _resolve_path(source)
    cfg: dict[str, Any] | None = None
    if path is None:
        if not is_model(str(source)):
            raise WeightsError(f"{source}: neither a weights file, a checkpoint, a run folder nor a pretrained tag")
        name, tag = split_model_name(str(source))
        cfg = {"name": name, **get_pretrained_cfg(name, tag).get("model_args", {})}
    elif path.suffix in (".pt", ".pth") and is_checkpoint(path):
        cfg = dict(load_checkpoint(path)["model_cfg"])
    elif path.suffix == ".safetensors":
        with contextlib.suppress(WeightsError):
            cfg = _safetensors_config(path)[0]
    if cfg is None or not cfg.get("name"):
        if model_name is None:
            guess = guess_architecture(read_state_dict(path)) if path is not None else []
            hint = f" (its keys match {', '.join(guess)})" if guess else ""
            raise WeightsError(f"{source}: plain weights without a model config; name the model with --model{hint}")
        return model_name, {}
    if model_name is not None and split_model_name(model_name)[0] != cfg["name"]:
        raise WeightsError(f"{source}: holds a {cfg['name']}, not a {model_name} (--model)")
    return cfg["name"], {k: v for k, v in cfg.items() if k not in _DATA_KEYS}
