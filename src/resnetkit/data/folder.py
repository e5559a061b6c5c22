"""Image folders (`root/<class>/<image>`) read lazily with Pillow, one image per item."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .errors import DatasetError
from .images import read_image
from .memory import split_indices
from .transforms import center_crop, random_hflip, random_resized_crop, resize_shorter

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def scan_image_folder(root: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and (path, label) pairs, sorted exactly as torchvision's ImageFolder sorts them."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise DatasetError(f"{root}: no class subfolders (expected {root}/<class>/<image>.png)")
    samples: list[tuple[Path, int]] = []
    empty = []
    for label, name in enumerate(classes):
        found = [
            Path(folder, file)
            for folder, _, files in sorted(os.walk(root / name, followlinks=True))
            for file in sorted(files)
            if file.lower().endswith(IMAGE_EXTENSIONS)
        ]
        if not found:
            empty.append(name)
        samples += [(path, label) for path in found]
    if empty:
        raise DatasetError(f"{root}: no {'/'.join(IMAGE_EXTENSIONS)} images in class folder(s) {', '.join(empty)}")
    return classes, samples


class FolderDataset(Dataset):
    """uint8 (C, H, W) images and int labels; random-resized-crop + flip when `train`, else
    resize of the shorter side to `resize_size` and a center crop of `image_size`."""

    def __init__(
        self,
        root: str | Path,
        image_size: int = 224,
        train: bool = False,
        mode: str = "RGB",
        resize_size: int | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
        self.resize_size = resize_size or image_size
        if self.resize_size < image_size:
            raise ValueError(f"resize_size {self.resize_size} is smaller than image_size {image_size}")
        self.root = Path(root)
        self.classes, self.samples = scan_image_folder(self.root)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.targets = [label for _, label in self.samples]
        self.image_size, self.train, self.mode = image_size, train, mode
        gray = mode == "L"
        self.mean = mean or ((sum(IMAGENET_MEAN) / 3,) if gray else IMAGENET_MEAN)
        self.std = std or ((sum(IMAGENET_STD) / 3,) if gray else IMAGENET_STD)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return 1 if self.mode == "L" else 3

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices: torch.Tensor | Sequence[int]) -> FolderDataset:
        """The same reader and transforms over the samples at ``indices``."""
        sub = copy.copy(self)
        sub.samples = [self.samples[i] for i in torch.as_tensor(indices).tolist()]
        sub.targets = [label for _, label in sub.samples]
        return sub

    def without(self, paths: Sequence[Path]) -> FolderDataset:
        """The same dataset less the files at ``paths`` (images refused by a scan)."""
        drop = set(paths)
        return self.subset([i for i, (path, _) in enumerate(self.samples) if path not in drop])

    def with_stats(self, mean: Sequence[float], std: Sequence[float]) -> FolderDataset:
        """The same images normalized with other statistics (a model's training statistics)."""
        sub = copy.copy(self)
        sub.mean, sub.std = tuple(mean), tuple(std)
        return sub

    def with_channels(self, chans: int) -> FolderDataset:
        """The same files read as ``chans`` channels (grayscale or RGB, as Pillow converts them),
        normalized with ImageNet's statistics for that many (until told others)."""
        if chans not in (1, 3):
            raise ValueError(f"cannot read images as {chans} channels: 1 (grayscale) or 3 (RGB)")
        if chans == self.in_chans:
            return self
        sub = copy.copy(self)
        sub.mode = "L" if chans == 1 else "RGB"
        sub.mean = (sum(IMAGENET_MEAN) / 3,) if chans == 1 else IMAGENET_MEAN
        sub.std = (sum(IMAGENET_STD) / 3,) if chans == 1 else IMAGENET_STD
        return sub

    def with_train(self, train: bool) -> FolderDataset:
        """The same files with training (random crop + flip) or evaluation transforms."""
        sub = copy.copy(self)
        sub.train = train
        return sub

    def split(self, val_size: int | float, seed: int = 0) -> tuple[FolderDataset, FolderDataset]:
        """A fixed, class-stratified (kept, held-out) split; the held-out part gets evaluation transforms."""
        keep, held = split_indices(torch.tensor(self.targets), val_size, seed, stratify=True)
        return self.subset(keep), self.subset(held).with_train(False)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = self.load(path)
        if self.train:
            image = random_hflip(random_resized_crop(image, self.image_size))
        else:
            image = center_crop(resize_shorter(image, self.resize_size), self.image_size)
        return image.contiguous(), label

    def load(self, path: Path) -> torch.Tensor:
        """The whole image at `path` as uint8 (C, H, W) in this dataset's mode."""
        # JPEG decodes at 1/2, 1/4 or 1/8 scale for free; the eval resize shrinks anyway.
        return read_image(path, self.mode, None if self.train else self.resize_size)
