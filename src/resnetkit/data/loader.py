"""Batch iterators yielding (normalized float32 images, int64 labels), sharded for distributed runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .augment import AugmentConfig, alternate_flips, augment_batch
from .memory import InMemoryDataset

# Tags a stream of random numbers apart from augmentation's [seed, epoch, rank] (SeedSequence pads
# its entropy with zeros, so [seed, 1] would be epoch 1's stream): no epoch reaches it.
_FIRST_FLIPS = 0x666C6970  # "flip"

Batch = tuple[torch.Tensor, torch.Tensor]


class InMemoryLoader:
    """Batches of an `InMemoryDataset`, gathered, normalized and augmented on `device`.

    Each epoch is a permutation seeded by `seed + epoch` (call `set_epoch`, as with
    DistributedSampler), identical on every rank; rank r takes every `world_size`-th index of it
    from r on, so shards are equal and disjoint (the `len % world_size` left over are skipped that
    epoch) and match DistributedSampler(drop_last=True) index for index. `batch_size` is per rank.
    With `even_shards=False` (evaluation) nothing is skipped: the first `len % world_size` ranks
    take one sample more, so summed metrics count every sample exactly once.
    """

    def __init__(
        self,
        dataset: InMemoryDataset,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        even_shards: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.augment, self.seed, self.rank, self.world_size = augment, seed, rank, world_size
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.even_shards = even_shards
        self.num_samples = len(dataset) // world_size
        if not even_shards:
            self.num_samples += int(rank < len(dataset) % world_size)
        self.epoch = 0
        # The uint8 set goes to the device once (CIFAR-10 is 150 MB): a batch is then a gather there.
        self._images = dataset.images.to(self.device)
        self._labels = dataset.labels.to(self.device)
        mean = torch.tensor(dataset.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(dataset.std, device=self.device).view(1, -1, 1, 1)
        self._scale, self._shift = 1 / (255 * std), mean / std
        # Alternating flips: one random side per sample, drawn from the seed alone so that every
        # rank and epoch agrees on it, in a stream of its own (epoch 0's shuffle is seeded with
        # `seed` itself). Copies of an image (data.min_epoch_images) draw a side each, so an
        # epoch that shows an image twice shows either side at random, not the same one twice.
        self._first_flips = None
        if augment is not None and augment.flip and augment.flip_mode == "alternate":
            state = np.random.SeedSequence([seed, _FIRST_FLIPS]).generate_state(1)[0]
            first = torch.rand(len(dataset), generator=torch.Generator().manual_seed(int(state))) < 0.5
            self._first_flips = first.to(self.device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def indices(self) -> torch.Tensor:
        """This rank's sample indices for the current epoch, in batch order."""
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(n)
        if not self.even_shards:
            return order[self.rank :: self.world_size]
        return order[self.rank : self.num_samples * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[Batch]:
        indices = self.indices().to(self.device)
        # Augmentation differs by rank and epoch; the permutation above must not.
        state = np.random.SeedSequence([self.seed, self.epoch, self.rank]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(state))
        for i in range(len(self)):
            batch = indices[i * self.batch_size : (i + 1) * self.batch_size]
            x = self._images[batch].float().mul_(self._scale).sub_(self._shift)
            # Augmenting after normalization makes zero padding and erasing fill with the mean
            # colour rather than black.
            if self.augment is not None:
                flips = None if self._first_flips is None else alternate_flips(self._first_flips, batch, self.epoch)
                x = augment_batch(x, self.augment, generator, flips)
            yield x.contiguous(memory_format=self.memory_format), self._labels[batch]


class NormalizeCollate:
    """Stacks uint8 (C, H, W) samples into a float32 batch normalized with mean/std."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, samples: list[tuple[torch.Tensor, int]]) -> Batch:
        images = torch.stack([image for image, _ in samples]).float().div_(255)
        labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
        return images.sub_(self.mean).div_(self.std), labels


class EvalShardSampler(Sampler):
    """Rank r's share for evaluation: samples r, r + N, r + 2N, ... in order. Unlike
    DistributedSampler, nothing is dropped or repeated, so summed metrics count each sample once."""

    def __init__(self, dataset_len: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = range(rank, dataset_len, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        pass


class StreamingLoader(DataLoader):
    """A DataLoader whose `set_epoch` reseeds its DistributedSampler, like `InMemoryLoader`'s."""

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, (DistributedSampler, EvalShardSampler)):
            self.sampler.set_epoch(epoch)


class NormalizedDataset(Protocol):
    """A map-style dataset of (uint8 image, label) that knows its normalization."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]: ...


def make_streaming_loader(
    dataset: NormalizedDataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    even_shards: bool = True,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> StreamingLoader:
    """A loader over a dataset of uint8 images (an image folder) that has `mean` and `std`.

    A DistributedSampler (with `world_size` 1 too) shards and orders the samples exactly as
    `InMemoryLoader` does; random augmentation inside the dataset uses torch's global generator,
    which the DataLoader seeds per worker from `seed + rank`. `even_shards=False` (evaluation)
    gives every sample to exactly one rank instead, as `InMemoryLoader` does.
    """
    sampler: Sampler[int]
    if even_shards:
        sampler = DistributedSampler(
            cast(Dataset, dataset), world_size, rank, shuffle=shuffle, seed=seed, drop_last=True
        )
    else:
        sampler = EvalShardSampler(len(dataset), rank, world_size)
    return StreamingLoader(
        cast(Dataset, dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn or NormalizeCollate(dataset.mean, dataset.std),
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed + rank),
    )


def eval_loader(
    ds: InMemoryDataset | NormalizedDataset, batch_size: int, device: torch.device | str = "cpu", workers: int = 2
) -> InMemoryLoader | StreamingLoader:
    """Batches of (normalized images, labels) in order, without augmentation."""
    if isinstance(ds, InMemoryDataset):
        return InMemoryLoader(ds, batch_size, shuffle=False, device=device)
    return make_streaming_loader(ds, batch_size, num_workers=workers)
