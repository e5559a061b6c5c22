"""A registered classifier as the backbone of a dense model: built (optionally from its
weights), with the normalization and trainable layers that dense training wants."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .base import ResNetBase
from .factory import create_model
from .registry import is_model, list_pretrained, split_model_name

WeightsSource = str | os.PathLike[str] | None


def backbone_classifier(
    name: str,
    *,
    in_chans: int,
    weights: WeightsSource = None,
    norm_layer: str | None = None,
    output_stride: int | None = None,
    **overrides,
) -> ResNetBase:
    """Classifier ``name`` without its head. ``weights`` is a file (torchvision-, timm- or
    resnetkit-named keys), or a shipped tag of the same architecture (``"resnet20.fashion_mnist"``).
    ``norm_layer=None`` picks frozen BatchNorm when starting from weights, as torchvision's
    detectors do (their batches are too small for batch statistics), and BatchNorm otherwise."""
    if norm_layer is None:
        norm_layer = "batchnorm" if weights is None else "frozen_batchnorm"
    kwargs = {"norm_layer": norm_layer, **overrides}
    if output_stride is not None:
        kwargs["output_stride"] = output_stride
    text = None if weights is None else os.fspath(weights)
    if text is not None and text in list_pretrained():
        arch, _ = split_model_name(text)
        if arch != name:
            raise ValueError(f"weights_backbone={text!r} are {arch}'s, not {name}'s")
        return create_model(text, pretrained=True, num_classes=0, in_chans=in_chans, **kwargs)
    if text is not None and not Path(text).is_file() and is_model(text):
        raise ValueError(
            f"weights_backbone={text!r}: no such shipped weights (shipped: {', '.join(list_pretrained())})"
        )
    return create_model(name, num_classes=0, in_chans=in_chans, weights=text, **kwargs)


def freeze_backbone_layers(model: ResNetBase, body: nn.Module, trainable_layers: int) -> None:
    """Train only the last ``trainable_layers`` of (stem, stage 1, ..., stage N) of ``body``
    (torchvision's ``trainable_backbone_layers``): early layers learn generic edges that a small
    detection dataset would only disturb."""
    parts = [list(model.stem_names), *[[s] for s in model.stage_names]]
    parts[-1] += model.tail_names  # a pre-activation net's final norm belongs to its last stage
    if not 0 <= trainable_layers <= len(parts):
        raise ValueError(f"trainable_backbone_layers={trainable_layers}: this backbone has 0..{len(parts)}")
    trainable = {n for part in parts[len(parts) - trainable_layers :] for n in part}
    for name, param in body.named_parameters():
        if name.split(".")[0] not in trainable:
            param.requires_grad_(False)
