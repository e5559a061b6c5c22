"""Datasets small enough to hold as one uint8 tensor (MNIST, CIFAR, digits)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


def convert_channels(images: torch.Tensor, chans: int) -> torch.Tensor:
    """uint8 images ``[N, C, H, W]`` as ``chans`` channels, as Pillow converts a picture: RGB to
    grayscale by ITU-R 601-2 luma (L = 0.299 R + 0.587 G + 0.114 B), grayscale to RGB by repeating it."""
    have = int(images.shape[1])
    if chans == have:
        return images
    if (have, chans) == (1, 3):
        return images.expand(-1, 3, -1, -1).contiguous()
    if (have, chans) == (3, 1):
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return torch.cat(
            [(chunk.float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255) for chunk in images.split(4096)]
        ).to(torch.uint8)
    raise ValueError(f"cannot convert {have}-channel images to {chans} channels")


def compute_mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images on the [0, 1] scale."""
    values = torch.arange(256, dtype=torch.float64) / 255
    mean, std = [], []
    for channel in images.unbind(1):
        # A histogram of the 256 levels gives exact moments without a float copy of the images.
        freq = torch.bincount(channel.reshape(-1), minlength=256).cpu().double() / channel.numel()
        m = float((freq * values).sum())
        mean.append(m)
        std.append(max(float((freq * values**2).sum()) - m * m, 0.0) ** 0.5)
    return tuple(mean), tuple(std)


@dataclass
class InMemoryDataset:
    """uint8 images (N, C, H, W), int64 labels (N,), class names, and the per-channel mean/std
    (of the training images, [0, 1] scale) that the loader normalizes with."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Positions in the split as loaded, kept through ``subset``: which images a subset holds.
    index: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise ValueError(f"labels must be int64 ({len(images)},), got {labels.dtype} {tuple(labels.shape)}")
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.classes):
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1}")
        self.mean, self.std = tuple(map(float, self.mean)), tuple(map(float, self.std))
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ValueError(f"mean and std need {self.in_chans} values, got {self.mean} and {self.std}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (int(self.images.shape[-2]), int(self.images.shape[-1]))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def source_index(self) -> torch.Tensor:
        """Each sample's position in the split it was loaded from."""
        return self.index if self.index is not None else torch.arange(len(self))

    def subset(self, indices: torch.Tensor) -> InMemoryDataset:
        """The samples at `indices`, keeping classes and normalization."""
        return InMemoryDataset(
            self.images[indices], self.labels[indices], self.classes, self.mean, self.std, self.source_index[indices]
        )

    def with_channels(self, chans: int) -> InMemoryDataset:
        """The images as ``chans`` channels, as Pillow converts a picture: RGB to grayscale by
        ITU-R 601-2 luma (L = 0.299 R + 0.587 G + 0.114 B), grayscale to RGB by repeating it; the
        statistics are the converted images' own."""
        if chans == self.in_chans:
            return self
        images = convert_channels(self.images, chans)
        mean, std = compute_mean_std(images)
        return dataclasses.replace(self, images=images, mean=mean, std=std)

    def with_stats(self, mean: Sequence[float], std: Sequence[float]) -> InMemoryDataset:
        """The same images normalized with other statistics (a model's training statistics)."""
        return dataclasses.replace(self, mean=tuple(mean), std=tuple(std))

    def split(
        self, val_size: int | float = 5000, seed: int = 0, stratify: bool = False
    ) -> tuple[InMemoryDataset, InMemoryDataset]:
        """A fixed (train, val) split: `val_size` samples (or that fraction, if below 1) held out.

        He et al. (arXiv:1512.03385, sec. 4.2) tune on a 45k/5k split of the CIFAR-10 training set.
        Both parts keep this dataset's mean/std, so validation is normalized like test data.
        """
        keep, held = split_indices(self.labels, val_size, seed, stratify)
        return self.subset(keep), self.subset(held)


def split_indices(
    labels: torch.Tensor, val_size: int | float, seed: int = 0, stratify: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (kept, held-out) indices: ``val_size`` samples (or that fraction, if below 1) drawn
    with a seeded permutation, per class in proportion to its size when ``stratify``."""
    n = len(labels)
    count = round(val_size * n) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not 0 < count < n:
        raise ValueError(f"val_size {val_size} leaves no training or no validation samples out of {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = _stratified_head(order, labels, count) if stratify else order[:count]
    is_held = torch.zeros(n, dtype=torch.bool)
    is_held[held] = True
    return torch.nonzero(~is_held).squeeze(1), torch.nonzero(is_held).squeeze(1)


def sample_indices(n: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` of ``n`` indices drawn without replacement (seeded: the same every call), sorted."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].sort().values


def _stratified_head(order: torch.Tensor, labels: torch.Tensor, count: int) -> torch.Tensor:
    """The first samples of each class in `order`, per class in proportion to its size."""
    ordered = labels[order]
    sizes = torch.bincount(ordered)
    quota = sizes.double() * count / len(order)
    take = quota.floor().long()
    # Largest remainders get the seats that flooring left over, so the total is exactly `count`.
    extra = torch.argsort(quota - take, descending=True, stable=True)[: count - int(take.sum())]
    take[extra] += 1
    sorted_labels, by_label = torch.sort(ordered, stable=True)
    starts = torch.cumsum(sizes, 0) - sizes
    rank_in_class = torch.empty_like(order)
    rank_in_class[by_label] = torch.arange(len(order)) - starts[sorted_labels]
    return order[rank_in_class < take[ordered]]
