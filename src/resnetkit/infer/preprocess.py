"""Image files to the input a model expects: its channels, size and normalization, read from
``model.pretrained_cfg`` (what a checkpoint or shipped weights say about their training data)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..data import read_image
from ..data.folder import IMAGENET_MEAN, IMAGENET_STD
from ..data.transforms import center_crop, resize, resize_shorter


class Describable(Protocol):
    """What reading inputs for a model needs of it: a ResNet, its fast path or an exported file."""

    @property
    def in_chans(self) -> int: ...


@dataclass(frozen=True)
class InputSpec:
    in_chans: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def input_size(model: Describable) -> tuple[int, int]:
    """The spatial size ``model`` was trained at (its record), else 224x224 (32x32 for CIFAR layouts)."""
    size = (getattr(model, "pretrained_cfg", None) or {}).get("image_size")
    if size:
        return int(size[0]), int(size[1])
    info = getattr(model, "feature_info", None)  # an exported file records its size instead
    side = 32 if info and info[0]["reduction"] == 1 else 224
    return side, side


def input_spec(model: Describable) -> InputSpec:
    """What ``model`` was trained on; a model without that record (freshly built) gets its own
    channel count, ``input_size`` and ImageNet statistics."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    chans = int(cfg.get("in_chans") or model.in_chans)
    mean: Sequence[float] = cfg.get("mean") or ()
    std: Sequence[float] = cfg.get("std") or ()
    if not mean:
        gray = chans == 1
        mean = (sum(IMAGENET_MEAN) / 3,) if gray else IMAGENET_MEAN
        std = (sum(IMAGENET_STD) / 3,) if gray else IMAGENET_STD
    if chans not in (1, 3):
        raise ValueError(f"the model takes {chans}-channel inputs; image files give 1 (grayscale) or 3 (RGB)")
    return InputSpec(chans, input_size(model), tuple(mean), tuple(std))


def load_images(paths: Sequence[str | os.PathLike[str]], model: Describable) -> torch.Tensor:
    """Normalized float images (N, C, H, W) for ``model``: converted to its channels, the shorter
    side resized to its input size and the centre cropped (as evaluation of image folders does)."""
    if not paths:
        raise ValueError("no images given")
    spec = input_spec(model)
    mode = "L" if spec.in_chans == 1 else "RGB"
    return torch.stack([normalize(fit(read_image(p, mode, max(spec.image_size)), spec), spec) for p in paths])


def fit(image: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """A uint8 image (C, H, W) at the model's input size: the shorter side resized, the centre cropped."""
    h, w = spec.image_size
    if h != w:
        return resize(image, (h, w))
    # A long strip (a 1x20000 PNG is a hundred bytes) would be resized to 224 x 4.5M pixels before
    # the crop threw most of it away: keep the centre at most 4:1 first, which leaves the crop as it was.
    short, long_ = sorted(image.shape[-2:])
    if long_ > 4 * short:
        image = _centre(image, 4 * short)
    return center_crop(resize_shorter(image, h), h).contiguous()


def _centre(image: torch.Tensor, most: int) -> torch.Tensor:
    """The centre of ``image`` with neither side longer than ``most``."""
    height, width = image.shape[-2:]
    top, left = max(0, (height - most) // 2), max(0, (width - most) // 2)
    return image[..., top : top + min(height, most), left : left + min(width, most)]


def normalize(image: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """A fitted uint8 image as the float input the model was trained on."""
    mean = torch.tensor(spec.mean).view(-1, 1, 1)
    std = torch.tensor(spec.std).view(-1, 1, 1)
    return (image.float() / 255 - mean) / std
