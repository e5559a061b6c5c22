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

from ..models import (
    ResNetBase,
    WeightsError,
    WeightsMismatch,
    create_model,
    is_model,
    load_weights,
    read_state_dict,
    trains_for,
)
from ..models.registry import get_pretrained_cfg, model_task, split_model_name
from ..models.weights import first_line, guess_architecture
from .cards import ModelCard, attach_card
from .checkpoint import Checkpoint, checkpoint_weights, is_checkpoint, load_checkpoint
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
    model config). ``model.card`` then holds its record (``ModelCard``): the task, the data's
    classes, channels, size and statistics, the run's splits, its config and measured results."""
    path = _resolve_path(source)
    if path is None:
        if is_model(str(source)):
            model = create_model(str(source), pretrained=True)
            card = ModelCard.from_dict(model.pretrained_cfg, str(source), model_task(str(source)))
            return attach_card(model, card, model.pretrained_cfg).to(device).eval()
        raise WeightsError(f"{source}: neither a file, a run folder, nor a pretrained tag (see `resnetkit info`)")
    if path.suffix == ".safetensors":
        model_cfg, card = _safetensors_config(path)
        model = _build(model_cfg, path)
        _load_recorded(model, read_state_dict(path), path)
    else:
        ckpt = load_checkpoint(path)
        model = _build(ckpt["model_cfg"], path)
        _load_recorded(model, checkpoint_weights(ckpt), path)
        card = checkpoint_card(ckpt, path)
    _check_task(card, model_cfg=model.model_cfg, source=path)
    # pretrained_cfg as before the record: the data facts (and a run's config, where a shipped card keeps it).
    raw = {**card.dataset_facts(), "training": {"config": dict(card.config)}} if card.config else None
    return attach_card(model, card, raw).to(device).eval()


def _load_recorded(model: ResNetBase, state: dict[str, torch.Tensor], path: Path) -> None:
    """Tensors into the architecture the file's own record names: where they do not fit it, the
    record (or the tensors) is wrong, and one line says which architecture they look like."""
    try:
        load_weights(model, state, name=str(path))
    except WeightsMismatch as e:
        looks = f"; the tensors look like {e.guess[0]}" if e.guess else ""
        raise WeightsError(
            f"{path}: its record names the architecture {model.model_cfg.get('name')!r} (model_cfg), but its tensors "
            f"do not fit it ({e.problems}){looks}: the file is damaged or its record was edited"
        ) from None


def checkpoint_card(ckpt: Checkpoint, path: Path) -> ModelCard:
    """A checkpoint's record: its task, data facts and config, and the test figures its run
    measured on these weights (``summary.json`` beside it, where the run finished with them)."""
    raw = {**(ckpt.get("dataset") or {}), "task": ckpt.get("task"), "training": {"config": ckpt.get("config") or {}}}
    card = ModelCard.from_dict(raw, str(path))
    summary = path.parent / "summary.json"
    if summary.is_file():
        with contextlib.suppress(OSError, ValueError):
            facts = json.loads(summary.read_text(encoding="utf-8"))
            if (
                isinstance(facts, dict)
                and facts.get("test_weights") == path.name
                and isinstance(facts.get("test"), dict)
            ):
                card = card.with_results(facts["test"])
    return card


def _check_task(card: ModelCard, model_cfg: dict[str, Any], source: Path) -> None:
    name = model_cfg.get("name")
    if isinstance(name, str) and is_model(name) and not trains_for(name, card.task):
        raise WeightsError(f"{source}: its record says {card.task} but it holds a {model_task(name)} model ({name})")


def _build(model_cfg: dict[str, Any], path: Path) -> ResNetBase:
    cfg = dict(model_cfg)
    name = cfg.pop("name", None)
    if not name:
        raise WeightsError(f"{path}: holds no model config; use create_model(name, weights='{path}')")
    return create_model(name, **cfg)


def _safetensors_config(path: Path) -> tuple[dict[str, Any], ModelCard]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors' SafetensorError for anything that is not one
        raise WeightsError(f"{path}: not a safetensors file, or a damaged one ({first_line(e)})") from None
    if "model_cfg" not in meta:
        raise WeightsError(f"{path}: plain weights without a model config; use create_model(name, weights='{path}')")
    try:
        model_cfg = json.loads(meta["model_cfg"])
        # "card" since the typed record; older files keep the data facts under "dataset".
        record = json.loads(meta["card"]) if "card" in meta else json.loads(meta.get("dataset", "{}"))
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: its metadata is not valid JSON ({e})") from None
    if not isinstance(model_cfg, dict) or not isinstance(record, dict):
        raise WeightsError(f"{path}: its metadata does not describe a model")
    name = model_cfg.get("name")
    task = model_task(name) if isinstance(name, str) and is_model(name) else None
    return model_cfg, ModelCard.from_dict(record, str(path), task)


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


def source_card(source: Source) -> ModelCard | None:
    """The record of the weights at ``source`` (a tag, a checkpoint or run folder, a resnetkit
    ``.safetensors``) without building the model; None for plain weights, which keep none."""
    path = _resolve_path(source)
    if path is None:
        if not is_model(str(source)):
            raise WeightsError(f"{source}: neither a weights file, a checkpoint, a run folder nor a pretrained tag")
        name, tag = split_model_name(str(source))
        return ModelCard.from_dict(get_pretrained_cfg(name, tag), str(source), model_task(name))
    if path.suffix in (".pt", ".pth") and is_checkpoint(path):
        return checkpoint_card(load_checkpoint(path), path)
    if path.suffix == ".safetensors":
        with contextlib.suppress(WeightsError):
            return _safetensors_config(path)[1]
    return None


def data_defaults(card: ModelCard) -> dict[str, Any]:
    """What training from a model's weights takes from its record unless told otherwise (timm's
    ``resolve_data_config``): its input size, channels and normalization, as ``data.*`` config."""
    out: dict[str, Any] = {}
    if card.image_size is not None:
        out["image_size"] = card.image_size[0]
    if card.in_chans is not None and card.kind is None:  # a sequence's channels are its data's, never converted
        out["channels"] = card.in_chans
    if card.kind == "series":  # its normalisation, with the new data's own statistics where "dataset"
        out["normalize"] = str(card.data_config.get("normalize") or "series")
    elif card.mean is not None and card.std is not None and card.kind is None:
        out |= {"mean": list(card.mean), "std": list(card.std)}
    return out
