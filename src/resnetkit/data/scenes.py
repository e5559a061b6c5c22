"""Garment scenes: Fashion-MNIST garments placed on a canvas at random scales and positions, with
a per-pixel class mask and a box per garment, for segmentation and detection on real images.
Training scenes draw only on Fashion-MNIST's training images and test scenes only on its test
images, so no garment seen in training is ever scored; every scene follows from the seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .catalog import DATASETS
from .errors import DatasetError
from .memory import compute_mean_std, convert_channels, split_indices

BACKGROUND = "background"
IGNORE_INDEX = 255  # mask value no loss or metric counts (torchvision's and VOC's convention)


@dataclass(frozen=True)
class SceneSpec:
    """How scenes are drawn. ``max_overlap``: the most of a new garment's box that boxes already
    placed may cover (a draw past it is retried). ``threshold``: a garment pixel brighter than this
    (0-255) belongs to the garment's mask; the rest of its square stays background."""

    size: int = 128
    min_objects: int = 1
    max_objects: int = 6
    min_scale: int = 16
    max_scale: int = 64
    max_overlap: float = 0.4
    threshold: int = 40
    train_scenes: int = 6000
    test_scenes: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"scenes: need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if not 4 <= self.min_scale <= self.max_scale <= self.size:
            raise ValueError(
                f"scenes: need 4 <= min_scale <= max_scale <= size, got {self.min_scale}, {self.max_scale}, {self.size}"
            )
        if not 0 <= self.max_overlap <= 1:
            raise ValueError(f"scenes: max_overlap must lie in [0, 1], got {self.max_overlap}")


@dataclass
class SceneDataset:
    """``images`` uint8 ``[N, 1, S, S]``; ``masks`` uint8 ``[N, S, S]`` (0 = background, c + 1 =
    garment class c); per scene ``boxes`` ``[K, 4]`` (x1, y1, x2, y2; pixels, x2/y2 exclusive) and
    ``labels`` ``[K]`` (1-based: 0 is the background, as in torchvision's detection label maps);
    ``sources``: the Fashion-MNIST image index of each garment (into the split it came from);
    ``placements``: where each garment's square went, ``[K, 3]`` (x0, y0, side), in drawing order."""

    images: torch.Tensor
    masks: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    sources: list[torch.Tensor]
    placements: list[torch.Tensor]
    classes: list[str]  # "background" first
    mean: tuple[float, ...]
    std: tuple[float, ...]
    target: str = "mask"  # what __getitem__ returns beside the image: "mask" or "boxes"
    in_memory: ClassVar[bool] = True  # batches come from memory: no loader worker processes
    index: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = torch.arange(len(self.images))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def in_chans(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        if self.target == "mask":
            return self.images[i], self.masks[i]
        # image_id: the scene's position here, under which the evaluation files its detections.
        return self.images[i], {"boxes": self.boxes[i], "labels": self.labels[i], "image_id": torch.tensor(i)}

    def subset(self, indices: torch.Tensor | Sequence[int]) -> SceneDataset:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        pick = idx.tolist()
        assert self.index is not None
        return replace(
            self,
            images=self.images[idx],
            masks=self.masks[idx],
            boxes=[self.boxes[i] for i in pick],
            labels=[self.labels[i] for i in pick],
            sources=[self.sources[i] for i in pick],
            placements=[self.placements[i] for i in pick],
            index=self.index[idx],
        )

    def split(self, val_size: int | float, seed: int = 0) -> tuple[SceneDataset, SceneDataset]:
        keep, held = split_indices(torch.zeros(len(self), dtype=torch.int64), val_size, seed)
        return self.subset(keep), self.subset(held)

    def with_channels(self, chans: int) -> SceneDataset:
        """The scenes as ``chans`` channels (``convert_channels``), with the converted images' statistics."""
        if chans == self.in_chans:
            return self
        images = convert_channels(self.images, chans)
        mean, std = compute_mean_std(images)
        return replace(self, images=images, mean=mean, std=std)

    def with_stats(self, mean: Sequence[float], std: Sequence[float]) -> SceneDataset:
        """The same scenes normalized with another model's statistics (fine-tuning from its weights)."""
        return replace(self, mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std))

    def with_target(self, target: str) -> SceneDataset:
        if target not in ("mask", "boxes"):
            raise ValueError(f"target must be 'mask' or 'boxes', got {target!r}")
        return replace(self, target=target)


def make_scenes(
    garments: torch.Tensor, garment_labels: torch.Tensor, count: int, spec: SceneSpec, seed: int, classes: list[str]
) -> SceneDataset:
    """``count`` scenes from ``garments`` (uint8 ``[M, 1, 28, 28]``) and their class labels."""
    g = torch.Generator().manual_seed(seed)
    s = spec.size
    images = torch.zeros(count, 1, s, s, dtype=torch.uint8)
    masks = torch.zeros(count, s, s, dtype=torch.uint8)
    boxes, labels, sources, placements = [], [], [], []
    for n in range(count):
        k = int(torch.randint(spec.min_objects, spec.max_objects + 1, (1,), generator=g))
        placed: list[list[float]] = []
        cls: list[int] = []
        src: list[int] = []
        where: list[list[int]] = []
        for _ in range(k):
            for _attempt in range(20):
                j = int(torch.randint(len(garments), (1,), generator=g))
                side = int(torch.randint(spec.min_scale, spec.max_scale + 1, (1,), generator=g))
                x0 = int(torch.randint(0, s - side + 1, (1,), generator=g))
                y0 = int(torch.randint(0, s - side + 1, (1,), generator=g))
                patch = _resize(garments[j], side)
                box = _tight_box(patch > spec.threshold, x0, y0)
                if box is not None and _covered(box, placed) <= spec.max_overlap:
                    break
            else:
                continue  # the canvas is too full for another garment
            on = patch > spec.threshold
            view = images[n, 0, y0 : y0 + side, x0 : x0 + side]
            # Drawn on top: a later garment hides what lies beneath it, in the image and in the mask.
            view[on] = patch[on]
            masks[n, y0 : y0 + side, x0 : x0 + side][on] = int(garment_labels[j]) + 1
            placed.append(box)
            cls.append(int(garment_labels[j]) + 1)
            src.append(j)
            where.append([x0, y0, side])
        boxes.append(torch.tensor(placed, dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor(cls, dtype=torch.int64))
        sources.append(torch.tensor(src, dtype=torch.int64))
        placements.append(torch.tensor(where, dtype=torch.int64).reshape(-1, 3))
    mean, std = _stats(images)
    return SceneDataset(images, masks, boxes, labels, sources, placements, [BACKGROUND, *classes], mean, std)


def _resize(garment: torch.Tensor, side: int) -> torch.Tensor:
    x = F.interpolate(garment[None].float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return x[0, 0].round().clamp(0, 255).to(torch.uint8)


def _tight_box(on: torch.Tensor, x0: int, y0: int) -> list[float] | None:
    ys, xs = torch.where(on)
    if len(xs) == 0:
        return None
    return [x0 + float(xs.min()), y0 + float(ys.min()), x0 + float(xs.max()) + 1, y0 + float(ys.max()) + 1]


def _covered(box: list[float], placed: list[list[float]]) -> float:
    """The largest share of ``box`` that any one placed box covers (or that ``box`` covers of it)."""
    worst = 0.0
    area = (box[2] - box[0]) * (box[3] - box[1])
    for other in placed:
        w = min(box[2], other[2]) - max(box[0], other[0])
        h = min(box[3], other[3]) - max(box[1], other[1])
        if w > 0 and h > 0:
            other_area = (other[2] - other[0]) * (other[3] - other[1])
            worst = max(worst, w * h / min(area, other_area))
    return worst


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = compute_mean_std(images)
    return mean, tuple(s or 1.0 for s in std)  # a blank canvas must not divide by zero


def load_scenes(
    garments: torch.Tensor, garment_labels: torch.Tensor, split: str, spec: SceneSpec, seed: int = 0
) -> SceneDataset:
    """The ``split`` scenes of ``spec`` from that split's Fashion-MNIST images. Train and test
    scenes use different seeds as well as different source images."""
    if split not in ("train", "test"):
        raise DatasetError(f"fashion-mnist-scenes: split must be 'train' or 'test', got {split!r}")
    count = spec.train_scenes if split == "train" else spec.test_scenes
    classes = list(DATASETS["fashion-mnist"].classes)
    return make_scenes(garments, garment_labels, count, spec, seed * 2 + (split == "test"), classes)
