"""Sequences as the engine and the tools see them: a split of series or texts (``SequenceSplit``,
read by ``resnetkit.data.sequences``) as a dataset, and batches made by length.

Unequal lengths are handled by bucketing, not by a mask: a batch holds sequences of one padded
length, so the model interface stays ``model(x)``. A series is never padded (its bucket is its
own length: nothing it does not contain enters the model, the rule tsai and sktime's deep
classifiers follow for unequal series by resampling or grouping). A text is padded with the
padding symbol up to the next multiple of ``TEXT_QUANTUM`` bytes and bucketed by that length, so
what the model sees of a text, and its prediction, never depends on the texts batched with it."""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections import Counter
from typing import Any

import numpy as np
import torch

from ..data import DatasetError
from ..data.sequences.record import SequenceSplit

TEXT_QUANTUM = 64  # bytes: a text is padded to the next multiple (VDCNN pads every text to 1,014)
PAD_SYMBOL = 256  # the byte models' padding index (``models.stem.ByteEmbedding``: vocab_size)


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


class SequenceDataset(SequenceSplit):
    """A split as the task trains, evaluates and embeds on it: the readers' ``SequenceSplit`` (the
    one record of a sequence split: values, lengths, targets, classes, kind, source, statistics,
    ``subset`` and the stratified ``split``), checked where it enters the engine, with its batching
    by length."""

    @classmethod
    def of(cls, split: SequenceSplit) -> SequenceDataset:
        """The readers' split, checked: shapes, dtypes and ranges (``SequenceSplit``'s own checks)
        and finite series, each error naming the split's source."""
        where = getattr(split, "source", "") or "the sequences"
        try:
            ds = cls(**{f.name: getattr(split, f.name) for f in dataclasses.fields(SequenceSplit)})
        except ValueError as e:
            raise DatasetError(f"{where}: {e}") from None
        if ds.kind == "text" and ds.in_chans != 1:
            raise DatasetError(f"{where}: a text split holds bytes (N, 1, L), not {ds.values.shape}")
        if ds.kind == "series" and not np.isfinite(ds.values).all():
            raise DatasetError(f"{where}: NaN or infinite values in the series")
        return ds

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
