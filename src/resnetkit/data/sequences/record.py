"""One split of a sequence dataset, as every reader returns it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..memory import split_indices


@dataclass(frozen=True)
class SequenceSplit:
    """Series or texts of one split, zero-padded to the longest item in it.

    ``values``: series float32 (N, C, L), normalised as ``load_sequences``' ``normalize`` says (by
    default per series and channel); text uint8 (N, 1, L), the UTF-8 bytes. Past each item's
    ``lengths[i]`` (1..L) the values are zeros. ``targets`` are indices into ``classes``; ``kind``
    is "series" or "text"; ``source`` names what was read. ``mean``/``std``: the training split's
    per-channel statistics the series were standardised with (``normalize="dataset"``), else None."""

    values: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    classes: tuple[str, ...]
    kind: str
    source: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        dtype = np.float32 if self.kind == "series" else np.uint8
        if self.kind not in ("series", "text"):
            raise ValueError(f"kind must be 'series' or 'text', got {self.kind!r}")
        if self.values.dtype != dtype or self.values.ndim != 3:
            raise ValueError(f"{self.kind} values must be {np.dtype(dtype)} (N, C, L), got {self.values.dtype} "
                             f"{self.values.shape}")  # fmt: skip
        n, _, length = self.values.shape
        for name, array in (("lengths", self.lengths), ("targets", self.targets)):
            if array.dtype != np.int64 or array.shape != (n,):
                raise ValueError(f"{name} must be int64 ({n},), got {array.dtype} {array.shape}")
        if n and not (self.lengths.min() >= 1 and self.lengths.max() <= length):
            raise ValueError(f"lengths must lie in 1..{length}")
        if n and not (self.targets.min() >= 0 and self.targets.max() < len(self.classes)):
            raise ValueError(f"targets must lie in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.values.shape[1])

    @property
    def max_length(self) -> int:
        return int(self.values.shape[2])

    def subset(self, indices: Sequence[int] | np.ndarray) -> SequenceSplit:
        """The items at ``indices``, padded to the longest of them."""
        rows = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[rows]
        longest = int(lengths.max()) if len(rows) else 1
        values = np.ascontiguousarray(self.values[rows, :, :longest])
        return dataclasses.replace(self, values=values, lengths=lengths, targets=self.targets[rows])

    def split(self, val_size: int | float, seed: int = 0) -> tuple[SequenceSplit, SequenceSplit]:
        """A fixed, class-stratified (kept, held-out) split: ``val_size`` items (or that fraction,
        if below 1) held out, drawn as ``InMemoryDataset.split`` draws them."""
        keep, held = split_indices(torch.from_numpy(self.targets), val_size, seed, stratify=True)
        return self.subset(keep.numpy()), self.subset(held.numpy())
