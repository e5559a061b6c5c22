"""Geometric transforms of one uint8 (C, H, W) image tensor, used by image folders."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# torchvision's RandomResizedCrop defaults (Szegedy et al. 2015, "Going deeper with convolutions").
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing (as PIL does when shrinking) to (height, width)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    x = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return x[0].round_().clamp_(0, 255).to(torch.uint8)


def resize_shorter(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the shorter side is `size`, keeping the aspect ratio (longer side truncated)."""
    h, w = image.shape[-2:]
    new = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    return resize(image, new)


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot center-crop {size}x{size} from a {h}x{w} image")
    top, left = round((h - size) / 2), round((w - size) / 2)
    return image[..., top : top + size, left : left + size]


def random_resized_crop(
    image: torch.Tensor,
    size: int,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A random box of `scale` of the area and `ratio` aspect, resized to (size, size)."""
    top, left, h, w = _random_box(image.shape[-2], image.shape[-1], scale, ratio, generator)
    return resize(image[..., top : top + h, left : left + w], (size, size))


def random_hflip(image: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    return image.flip(-1) if _uniform(0.0, 1.0, generator) < p else image


def _random_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], generator: torch.Generator | None
) -> tuple[int, int, int, int]:
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(*scale, generator)
        aspect = math.exp(_uniform(*log_ratio, generator))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    # Ten misses (extreme aspect ratios): the central box with the nearest allowed ratio, as torchvision.
    w, h = width, height
    if width / height < ratio[0]:
        h = round(width / ratio[0])
    elif width / height > ratio[1]:
        w = round(height * ratio[1])
    return (height - h) // 2, (width - w) // 2, h, w


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))
