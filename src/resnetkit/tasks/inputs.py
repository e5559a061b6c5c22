"""What a saved model takes as input, from its record (``ModelCard``): channels, size and
normalization, and one decoded image turned into that input. Every tool that feeds a model
(``predict``, ``eval`` on files, ``serve``, Grad-CAM) reads images through here, so a file and
an upload are fed alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..artifacts import model_card
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

    @property
    def mode(self) -> str:
        """The Pillow mode images are read in: grayscale for a 1-channel model, else RGB."""
        return "L" if self.in_chans == 1 else "RGB"


def input_size(model: Describable) -> tuple[int, int]:
    """The spatial size ``model`` was trained at (its record), else 224x224 (32x32 for CIFAR layouts)."""
    size = model_card(model).image_size
    if size:
        return size
    info = getattr(model, "feature_info", None)  # an exported file records its size instead
    side = 32 if info and info[0]["reduction"] == 1 else 224
    return side, side


def input_spec(model: Describable) -> InputSpec:
    """What ``model`` was trained on; a model without that record (freshly built) gets its own
    channel count, ``input_size`` and ImageNet statistics."""
    card = model_card(model)
    chans = int(card.in_chans or model.in_chans)
    mean: Sequence[float] = card.mean or ()
    std: Sequence[float] = card.std or ()
    if not mean:
        gray = chans == 1
        mean = (sum(IMAGENET_MEAN) / 3,) if gray else IMAGENET_MEAN
        std = (sum(IMAGENET_STD) / 3,) if gray else IMAGENET_STD
    if chans not in (1, 3):
        raise ValueError(f"the model takes {chans}-channel inputs; image files give 1 (grayscale) or 3 (RGB)")
    return InputSpec(chans, input_size(model), tuple(mean), tuple(std))


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


def fit_within(image: torch.Tensor, longest: int) -> torch.Tensor:
    """``image`` as it is, or shrunk (aspect kept) so its longer side is at most ``longest``:
    dense models run on an image at its own size, and memory grows with its pixels."""
    h, w = image.shape[-2:]
    if max(h, w) <= longest:
        return image
    scale = longest / max(h, w)
    return resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))


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
