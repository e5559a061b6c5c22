"""What a detector does around its network, as torchvision's ``GeneralizedRCNNTransform``:
normalize, resize (shorter side to ``min_size``, longer at most ``max_size``), pad into one batch
divisible by the coarsest stride, and map the detections back to each input's own size."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Target = dict[str, torch.Tensor]


@dataclass
class ImageBatch:
    tensors: torch.Tensor  # [N, C, H, W], padded
    image_sizes: list[tuple[int, int]]  # each image's (height, width) before padding


class DetectionTransform(nn.Module):
    def __init__(
        self,
        min_size: int | Sequence[int],
        max_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        size_divisible: int = 32,
    ):
        super().__init__()
        self.min_size = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        self.max_size = max_size
        self.image_mean, self.image_std = list(image_mean), list(image_std)
        self.size_divisible = size_divisible

    def forward(
        self, images: Sequence[torch.Tensor], targets: list[Target] | None = None
    ) -> tuple[ImageBatch, list[Target] | None]:
        out: list[torch.Tensor] = []
        sizes: list[tuple[int, int]] = []
        new_targets: list[Target] | None = [] if targets is not None else None
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[0] != len(self.image_mean):
                raise ValueError(
                    f"image {i}: shape {tuple(image.shape)}; expected [{len(self.image_mean)}, H, W] floats in [0, 1]"
                )
            image = self.normalize(image)
            target = targets[i] if targets is not None else None
            image, target = self.resize(image, target)
            out.append(image)
            sizes.append((int(image.shape[-2]), int(image.shape[-1])))
            if new_targets is not None and target is not None:
                new_targets.append(target)
        return ImageBatch(self.batch(out), sizes), new_targets

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)
        std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
        return (image - mean[:, None, None]) / std[:, None, None]

    def resize(self, image: torch.Tensor, target: Target | None) -> tuple[torch.Tensor, Target | None]:
        h, w = image.shape[-2:]
        # A random shorter side per image in training is torchvision's scale augmentation.
        size = random.choice(self.min_size) if self.training else self.min_size[-1]
        scale = min(size / min(h, w), self.max_size / max(h, w))
        if scale != 1.0:  # bilinear at scale 1 is the identity: skip the copy
            image = F.interpolate(
                image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True, align_corners=False
            )[0]
        if target is not None and "boxes" in target:
            target = {**target, "boxes": resize_boxes(target["boxes"], (h, w), tuple(image.shape[-2:]))}
        return image, target

    def batch(self, images: list[torch.Tensor]) -> torch.Tensor:
        d = self.size_divisible
        height = math.ceil(max(i.shape[-2] for i in images) / d) * d
        width = math.ceil(max(i.shape[-1] for i in images) / d) * d
        batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
        for slot, image in zip(batch, images, strict=True):
            slot[:, : image.shape[-2], : image.shape[-1]].copy_(image)
        return batch

    def postprocess(
        self, detections: list[dict[str, Any]], sizes: list[tuple[int, int]], original: list[tuple[int, int]]
    ) -> list[dict[str, Any]]:
        for det, size, orig in zip(detections, sizes, original, strict=True):
            det["boxes"] = resize_boxes(det["boxes"], size, orig)
        return detections


def resize_boxes(boxes: torch.Tensor, old: Sequence[int], new: Sequence[int]) -> torch.Tensor:
    """Boxes of an image of size ``old = (h, w)`` in the coordinates of the same image at ``new``."""
    ry, rx = new[0] / old[0], new[1] / old[1]
    return boxes * torch.tensor([rx, ry, rx, ry], dtype=boxes.dtype, device=boxes.device)
