"""Sequences as the engine and the tools see them: a split of series or texts (``SequenceSplit``,
read by ``resnetkit.data.sequences``) as a dataset, and batches made by length.

Unequal lengths are handled by bucketing, not by a mask: a batch holds sequences of one padded
length, so the model interface stays ``model(x)``. A series is never padded (its bucket is its
own length: nothing it does not contain enters the model, the rule tsai and sktime's deep
classifiers follow for unequal series by resampling or grouping). A text is padded with the
padding symbol up to the next multiple of ``TEXT_QUANTUM`` bytes and bucketed by that length, so
what the model sees of a text, and its prediction, never depends on the texts batched with it."""

from __future__ import annotations

import importlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import DatasetError

TEXT_QUANTUM = 64  # bytes: a text is padded to the next multiple (VDCNN pads every text to 1,014)
PAD_SYMBOL = 256  # the byte models' padding index (``models.stem.ByteEmbedding``: vocab_size)
KINDS = ("series", "text")


def load_split(
    spec: str,
    split: str,
    *,
    seed: int = 0,
    max_length: int | None = None,
    root: Any = None,
    normalize: str = "series",
    stats: Any = None,
) -> Any:
    """``resnetkit.data.sequences.load_sequences``: the readers of UCR/UEA, .ts, .npz, CSV and
    texts. Imported here, when a sequence is first read, so the task does not tie the stack's
    import order to them."""
    readers = importlib.import_module("resnetkit.data.sequences")
    return readers.load_sequences(
        spec, split, seed=seed, max_length=max_length, root=root, normalize=normalize, stats=stats
    )


def normalize_series(x: np.ndarray, mode: str, mean: Any = None, std: Any = None) -> np.ndarray:
    """One series (C, L) float64 prepared as a model trained with ``data.normalize=mode`` saw its
    data: per channel over its own steps ("series"), with the training split's ``mean``/``std``
    ("dataset"), or as it is ("none"); float32."""
    readers = importlib.import_module("resnetkit.data.sequences")
    values = np.ascontiguousarray(x, dtype=np.float32)[None]
    lengths = np.array([x.shape[-1]], dtype=np.int64)
    if mode == "series":
        return znorm(x)
    if mode == "dataset" and (mean is None or std is None):
        raise ValueError("the model was trained with data.normalize='dataset' but its record has no mean/std")
    stats = (tuple(mean), tuple(std)) if mode == "dataset" else None
    return np.asarray(readers.normalized(values, lengths, mode, stats)[0], dtype=np.float32)


def is_sequence_spec(spec: str) -> bool:
    try:
        readers = importlib.import_module("resnetkit.data.sequences")
    except ImportError:
        return False
    return bool(readers.is_sequence_spec(spec))


@dataclass
class SequenceDataset:
    """A split's arrays: ``values`` (N, C, L) float32 z-normalised series or uint8 UTF-8 bytes,
    zero past each item's ``lengths``; ``targets`` class indices into ``classes``."""

    values: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    classes: tuple[str, ...]
    kind: str
    source: str = ""
    mean: tuple[float, ...] | None = None  # the training split's per-channel statistics (data.normalize=dataset)
    std: tuple[float, ...] | None = None

    @classmethod
    def of(cls, split: Any) -> SequenceDataset:
        """From a ``SequenceSplit`` (or anything with its fields), checked."""
        ds = cls(
            np.asarray(split.values),
            np.asarray(split.lengths, dtype=np.int64),
            np.asarray(split.targets, dtype=np.int64),
            tuple(split.classes),
            str(split.kind),
            str(getattr(split, "source", "")),
            getattr(split, "mean", None),
            getattr(split, "std", None),
        )
        ds.check()
        return ds

    def check(self) -> None:
        where = self.source or "the sequences"
        if self.kind not in KINDS:
            raise DatasetError(f"{where}: kind {self.kind!r}, expected one of {', '.join(KINDS)}")
        if self.values.ndim != 3 or len(self.values) != len(self.lengths) or len(self.values) != len(self.targets):
            raise DatasetError(
                f"{where}: values {self.values.shape}, lengths {self.lengths.shape} and targets "
                f"{self.targets.shape} do not describe N sequences of (C, L)"
            )
        if len(self.lengths) and (self.lengths.min() < 1 or self.lengths.max() > self.values.shape[2]):
            raise DatasetError(f"{where}: lengths must lie in 1..{self.values.shape[2]}")
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= len(self.classes)):
            raise DatasetError(f"{where}: targets must be class indices below {len(self.classes)}")
        if self.kind == "text" and (self.values.dtype != np.uint8 or self.values.shape[1] != 1):
            raise DatasetError(f"{where}: a text split holds uint8 bytes (N, 1, L), not {self.values.dtype}")
        if self.kind == "series" and not np.isfinite(self.values).all():
            raise DatasetError(f"{where}: NaN or infinite values in the series")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def in_chans(self) -> int:
        return int(self.values.shape[1])

    @property
    def max_length(self) -> int:
        return int(self.values.shape[2])

    def subset(self, indices: Any) -> SequenceDataset:
        idx = np.asarray(indices, dtype=np.int64)
        return SequenceDataset(
            self.values[idx], self.lengths[idx], self.targets[idx], self.classes, self.kind, self.source, self.mean,
            self.std,
        )  # fmt: skip

    def split(self, fraction: float | int, seed: int = 0) -> tuple[SequenceDataset, SequenceDataset]:
        """(rest, held out): a seeded, class-stratified share (``fraction`` < 1) or count held out."""
        n = len(self)
        count = int(fraction) if fraction >= 1 else max(1, round(n * float(fraction)))
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        # Stratified: every class gives its share, in the permutation's order.
        held: list[int] = []
        for c in range(len(self.classes)):
            members = order[self.targets[order] == c]
            held += members[: round(len(members) * count / max(n, 1))].tolist()
        held_set = set(held)
        rest = [i for i in range(n) if i not in held_set]
        return self.subset(sorted(rest)), self.subset(sorted(held))

    def bucket_lengths(self) -> np.ndarray:
        """The length each item is batched at (``bucket_length``)."""
        return np.array([bucket_length(int(n), self.kind) for n in self.lengths], dtype=np.int64)

    def inputs(self, indices: np.ndarray, length: int) -> torch.Tensor:
        """The model input of these items, all of bucket length ``length``."""
        return model_input(self.values[indices], self.lengths[indices], self.kind, length)


def bucket_length(length: int, kind: str) -> int:
    return length if kind == "series" else TEXT_QUANTUM * math.ceil(length / TEXT_QUANTUM)


def model_input(values: np.ndarray, lengths: np.ndarray, kind: str, length: int) -> torch.Tensor:
    """(N, C, length): series as float32 (each item's own length: the bucket's), texts as int64
    byte values with ``PAD_SYMBOL`` past each text's end."""
    part = values[:, :, :length]
    if part.shape[2] < length:
        part = np.pad(part, ((0, 0), (0, 0), (0, length - part.shape[2])))
    if kind == "series":
        return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))
    x = torch.from_numpy(part.astype(np.int64))
    ended = torch.arange(length)[None, None, :] >= torch.from_numpy(np.asarray(lengths))[:, None, None]
    return x.masked_fill(ended, PAD_SYMBOL)


class BucketLoader:
    """Batches of one padded length (``SequenceDataset.bucket_lengths``), at most ``batch_size``
    each. Training shuffles within buckets and the order of batches, from ``seed`` and the epoch,
    so a resumed epoch replays the same batches; under DDP each rank takes every world_size-th
    batch of a count that divides evenly. Evaluation keeps the order and every item once."""

    def __init__(
        self,
        dataset: SequenceDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        even_shards: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size}: must be at least 1")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.seed, self.rank, self.world_size, self.even_shards = seed, rank, world_size, even_shards
        self.epoch = 0
        self.buckets = self.dataset.bucket_lengths()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[tuple[int, np.ndarray]]:
        """(bucket length, item indices) of every batch this rank runs this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        out: list[tuple[int, np.ndarray]] = []
        for length in sorted(set(self.buckets.tolist())):
            members = np.flatnonzero(self.buckets == length)
            if self.shuffle:
                members = rng.permutation(members)
            out += [(length, members[i : i + self.batch_size]) for i in range(0, len(members), self.batch_size)]
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
        if self.even_shards:
            out = out[: len(out) - len(out) % self.world_size] if len(out) >= self.world_size else out
        return out[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.batches())

    def __iter__(self):
        for length, idx in self.batches():
            yield self.dataset.inputs(idx, length), torch.from_numpy(self.dataset.targets[idx])


def common_length(ds: SequenceDataset) -> int:
    """The bucket length most items have (ties: the shorter)."""
    counts = Counter(ds.bucket_lengths().tolist())
    return min(counts, key=lambda n: (-counts[n], n))


def znorm(x: np.ndarray) -> np.ndarray:
    """Each channel of a series (C, L) z-normalised over its steps, as the UCR archive's series
    are; a constant channel becomes zeros."""
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return ((x - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)
