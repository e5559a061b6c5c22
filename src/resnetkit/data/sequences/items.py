"""What a reader hands on: the items of one file, padded, with their labels as written."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError
from .errors import short
from .limits import MAX_ITEMS, MAX_LENGTH, MAX_VALUES


@dataclass
class ReadItems:
    """``values`` (N, C, L) float32 (series, not yet normalised) or uint8 (text), zero-padded;
    ``labels`` as the file writes them; ``place(i)`` says where item i is ("FILE, line 7");
    ``classes``, when the file itself names its classes in index order (an .npz's ``classes``);
    ``indices``, when its labels are integers (an .npz's ``y``): indices into the training
    file's ``classes`` when the training file names them and this one does not."""

    values: np.ndarray
    lengths: np.ndarray
    labels: list[str]
    place: Callable[[int], str]
    kind: str
    source: str
    classes: tuple[str, ...] | None = None
    indices: np.ndarray | None = None


def check_length(length: int, max_length: int | None, where: str, unit: str = "steps") -> None:
    """An item longer than ``max_length`` (or, without one, the reader's limit) is an error."""
    if max_length is not None and length > max_length:
        raise DatasetError(f"{where}: {length:,} {unit}, longer than max_length={max_length:,}")
    if length > MAX_LENGTH:
        raise DatasetError(f"{where}: {length:,} {unit}, past the limit of {MAX_LENGTH:,} for one item")


def check_count(count: int, where: str) -> None:
    if count > MAX_ITEMS:
        raise DatasetError(f"{where}: more than {MAX_ITEMS:,} items, past the limit for one split")


def check_padded(n: int, channels: int, length: int, where: str) -> None:
    """The padded (N, C, L) array within ``MAX_VALUES``, checked before it is allocated."""
    if n * channels * length > MAX_VALUES:
        raise DatasetError(
            f"{where}: {n:,} items x {channels:,} channels x {length:,} steps (padded to the longest) is past "
            f"the limit of {MAX_VALUES:,} values for one split"
        )


def pad(arrays: Sequence[np.ndarray], dtype: type, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(C, L_i) arrays as one zero-padded (N, C, max L_i) array of ``dtype``, and the lengths."""
    if not arrays:
        raise DatasetError(f"{where}: no items")
    lengths = np.fromiter((a.shape[-1] for a in arrays), dtype=np.int64, count=len(arrays))
    channels, longest = arrays[0].shape[0], int(lengths.max())
    check_padded(len(arrays), channels, longest, where)
    values: np.ndarray = np.zeros((len(arrays), channels, longest), dtype=dtype)
    for row, array in zip(values, arrays, strict=True):
        row[:, : array.shape[-1]] = array
    return values, lengths


def _numeric_key(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def class_order(labels: Sequence[str]) -> tuple[str, ...]:
    """The distinct labels, sorted: by value when every label is a number ("2" before "10", as
    the UCR archive numbers its classes), else as strings."""
    distinct = set(labels)
    keys = {label: _numeric_key(label) for label in distinct}
    if all(key is not None for key in keys.values()):
        return tuple(sorted(distinct, key=lambda label: (keys[label], label)))
    return tuple(sorted(distinct))


def encode(items: ReadItems, classes: Sequence[str], whose: str, by_index: bool = False) -> np.ndarray:
    """int64 indices of ``items``' labels in ``classes``; a label that is not one of them is an
    error naming the item. ``by_index``: the items' integer labels are the indices."""
    if by_index and items.indices is not None:
        bad = np.flatnonzero((items.indices < 0) | (items.indices >= len(classes)))
        if len(bad):
            raise DatasetError(
                f"{items.place(int(bad[0]))}: label {items.indices[bad[0]]} is out of range 0..{len(classes) - 1} "
                f"({whose} classes)"
            )
        return items.indices.astype(np.int64)
    index = {name: i for i, name in enumerate(classes)}
    targets = np.empty(len(items.labels), dtype=np.int64)
    for i, label in enumerate(items.labels):
        found = index.get(label)
        if found is None:
            listed = ", ".join(map(repr, classes[:20])) + (", ..." if len(classes) > 20 else "")
            raise DatasetError(f"{items.place(i)}: label {short(label)!r} is not one of {whose} classes ({listed})")
        targets[i] = found
    return targets


def check_classes(targets: np.ndarray, classes: Sequence[str], where: str, note: str = "") -> None:
    """Every class of the training split has at least two examples: one example cannot be both
    learned from and held out for validation, and is most often a mislabelled item."""
    counts = np.bincount(targets, minlength=len(classes))
    for c, count in enumerate(counts.tolist()):
        if count < 2:
            what = "a single example" if count == 1 else "no example"
            raise DatasetError(
                f"{where}: class {short(classes[c])!r} has {what} in the training split{note} "
                "(each class needs at least 2)"
            )
