"""``load_model``: one call from a pretrained tag, a checkpoint, a run folder or a weights file to a
model ready for inference, with what it needs to know about its inputs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from .models import create_model, is_model, load_weights
from .models.weights import WeightsError, clean_state_dict, read_state_dict


def _resolve_path(source: str | os.PathLike) -> Path | None:
    path = Path(source)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise WeightsError(f"{path}: a folder without best.pt or last.pt")
    return path if path.is_file() else None


def checkpoint_weights(ckpt: dict) -> dict[str, torch.Tensor]:
    """The weights a checkpoint was evaluated with: its EMA when it kept one."""
    if ckpt.get("eval_weights") == "ema" and ckpt.get("ema"):
        return {k[len("module."):]: v for k, v in ckpt["ema"].items() if k.startswith("module.")}
    return clean_state_dict(ckpt["model"])


def load_model(source: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
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
        from .train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        model = _build(ckpt["model_cfg"], path)
        load_weights(model, checkpoint_weights(ckpt))
        # What the run was trained on, and its config in the place a shipped card keeps it.
        model.pretrained_cfg = {**(ckpt.get("dataset") or {}), "training": {"config": ckpt.get("config") or {}}}
    return model.to(device).eval()


def _build(model_cfg: dict, path: Path) -> nn.Module:
    cfg = dict(model_cfg)
    name = cfg.pop("name", None)
    if not name:
        raise WeightsError(f"{path}: holds no model config; use create_model(name, weights='{path}')")
    return create_model(name, **cfg)


def _safetensors_config(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "model_cfg" not in meta:
        raise WeightsError(f"{path}: plain weights without a model config; use create_model(name, weights='{path}')")
    return json.loads(meta["model_cfg"]), json.loads(meta.get("dataset", "{}"))


def export_weights(model: nn.Module, path: str | os.PathLike, dataset: dict | None = None) -> Path:
    """Save weights as safetensors with the model config (and dataset facts) in the metadata, so
    ``load_model`` needs nothing else."""
    from .models import save_weights

    meta = {"model_cfg": json.dumps(model.model_cfg), "dataset": json.dumps(dataset or getattr(model, "pretrained_cfg", {}))}
    return save_weights(model, path, metadata=meta)


def load_pretrained_into(model: nn.Module, source: str | os.PathLike) -> nn.Module:
    """Fine-tuning: the weights of a tag, checkpoint or file into ``model``; a head of another
    size stays fresh and the first conv is adapted to the model's input channels."""
    path = _resolve_path(source)
    if path is None:
        if not is_model(str(source)):
            raise WeightsError(f"{source}: neither a weights file, a checkpoint nor a pretrained tag")
        sd = load_model(source).state_dict()
    elif path.suffix in (".pt", ".pth") and _is_checkpoint(path):
        from .train.checkpoint import load_checkpoint

        sd = checkpoint_weights(load_checkpoint(path))
    else:
        sd = read_state_dict(path)
    return load_weights(model, sd)


def _is_checkpoint(path: Path) -> bool:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return isinstance(obj, dict) and str(obj.get("format", "")).startswith("resnetkit-checkpoint")
