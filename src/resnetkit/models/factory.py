"""``create_model``: name -> built, optionally pretrained, optionally features-only model."""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any, Literal, cast, overload

from .base import ResNetBase
from .features import FeatureListNet
from .registry import get_pretrained_cfg, model_entrypoint, model_family, model_task, split_model_name
from .weights import load_weights

# Constructor arguments each builder fixes itself: not user overrides.
_NOT_OVERRIDES = {"self", "block", "layers", "head", "kind", "backbone_name"}


def model_options(name: str) -> list[str]:
    """The keyword overrides ``create_model(name, ...)`` accepts."""
    params = inspect.signature(model_family(name)).parameters
    return [p for p in params if p not in _NOT_OVERRIDES]


@overload
def create_model(
    model_name: str,
    pretrained: bool = ...,
    num_classes: int | None = ...,
    in_chans: int | None = ...,
    features_only: Literal[False] = ...,
    out_indices: None = ...,
    weights: str | os.PathLike[str] | None = ...,
    **overrides: Any,
) -> ResNetBase: ...


@overload
def create_model(
    model_name: str,
    pretrained: bool = ...,
    num_classes: int | None = ...,
    in_chans: int | None = ...,
    *,
    features_only: Literal[True],
    out_indices: Sequence[int] | None = ...,
    weights: str | os.PathLike[str] | None = ...,
    **overrides: Any,
) -> FeatureListNet: ...


def create_model(
    model_name: str,
    pretrained: bool = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    weights: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> ResNetBase | FeatureListNet:
    """Build a registered model.

    ``model_name`` may carry a pretrained tag (``"resnet20.fashion_mnist"``). ``num_classes``
    defaults to the family's (1000 for ImageNet layouts, 10 for CIFAR ones) or the pretrained
    weights'. ``weights`` loads a file of your own (safetensors or .pth, torchvision- and
    timm-named keys as they are); pretrained or not, a 3-channel first conv is adapted to
    ``in_chans`` and a head of another size is left freshly initialised.
    """
    name, tag = split_model_name(model_name)
    builder = model_entrypoint(name)
    if features_only and model_task(name) not in ("classification", "sequence"):
        raise ValueError(f"features_only: {name} is a {model_task(name)} model; its backbone is model.backbone")
    options = model_options(name)
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        raise ValueError(
            f"create_model({name!r}): unknown option(s) {', '.join(unknown)}; options are {', '.join(options)}"
        )
    cfg = get_pretrained_cfg(name, tag) if pretrained else None
    if cfg is not None:
        for key, value in cfg.get("model_args", {}).items():
            overrides.setdefault(key, value)
        num_classes = cfg["num_classes"] if num_classes is None else num_classes
        in_chans = cfg.get("in_chans", 3) if in_chans is None else in_chans
    # No in_chans given: the builder's own (3 for images, 1 for a series or a text).
    kwargs = dict(overrides) if in_chans is None else dict(overrides, in_chans=in_chans)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    # Dense builders return segmentation and detection models; they are typed as the classifiers
    # that most callers build (model_task(name) says which a name is).
    model = cast(ResNetBase, builder(**kwargs))
    # What rebuilds the model: a backbone's weights file is not needed again (the model's own
    # weights follow), but what it decided (frozen norms, trainable layers) is.
    rebuild = {k: v for k, v in kwargs.items() if k != "weights_backbone"}
    model.model_cfg = {
        "name": name,
        **rebuild,
        **getattr(model, "resolved_args", {}),
        "in_chans": model.in_chans,
        "num_classes": model.num_classes,
    }
    model.pretrained_cfg = cfg or {}
    if cfg is not None:
        load_weights(model, cfg["file"])
    if weights is not None:
        load_weights(model, weights)
    if features_only:
        return FeatureListNet(model, out_indices)
    if out_indices is not None:
        raise ValueError("out_indices is only meaningful with features_only=True")
    return model
