"""``load_sequences``: one split of any sequence dataset, checked, normalised and padded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from ..memory import split_indices
from .items import ReadItems, check_classes, class_order, encode
from .limits import MAX_LENGTH
from .normalize import channel_stats, check_normalize, normalized
from .record import SequenceSplit
from .specs import plan

TEST_FRACTION = 0.2  # held out of a single file or corpus, per class in proportion (stratified)


Stats = tuple[tuple[float, ...], tuple[float, ...]]


def load_sequences(
    spec: str,
    split: str,
    *,
    seed: int = 0,
    max_length: int | None = None,
    root: str | Path | None = None,
    normalize: str = "series",
    stats: Stats | None = None,
) -> SequenceSplit:
    """One split ("train" or "test") of the series or texts ``spec`` names.

    ``spec``: ``ucr:<Name>`` (a dataset the installed aeon bundles, or one in ``root`` laid out as
    ``<Name>/<Name>_TRAIN.ts``), ``fortunes`` (Debian's corpus; ``root`` overrides
    ``/usr/share/games/fortunes``), a ``.ts``, ``.npz``, ``.tsv`` or ``.csv`` file, a folder with
    one train and one test file, or a folder of ``<class>/*.txt`` (see ``specs``).

    Splits: an archive's or a folder's own train and test files; a single file or corpus is
    split here, ``TEST_FRACTION`` (20%) of each class held out as test by a permutation seeded
    with ``seed`` (the same split every call with that seed, train and test disjoint).

    Classes: the training split's labels in sorted order (by value when all are numbers), or a
    training ``.npz``'s ``classes`` (a test ``.npz`` without them then holds indices into them);
    the test split is mapped with the training split's classes, and a test label the training
    split lacks is an error. Every class needs at least two training examples.

    Series are normalised as ``normalize`` says (``normalize.NORMALIZE``): "series" (default,
    UCR practice) z-normalises each series per channel over its valid steps (a constant channel
    becomes zeros); "dataset" standardises every split with the training split's per-channel mean
    and std (``stats`` where given: a saved model's, else computed here from the training split,
    and recorded in the split's ``mean``/``std``); "none" keeps the values as read. Items of
    unequal length are zero-padded to the longest in the split and ``lengths`` records each one.

    A series or text longer than ``max_length`` is an error, except in the fortunes corpus, whose
    longer items are dropped (its rule; default 1024 bytes). NaN and infinite values, empty texts,
    text that is not UTF-8, headers that contradict their data and sizes past ``limits``: each a
    one-line ``DatasetError`` naming the file.

    ``root`` applies to ``ucr:`` (a folder of ``<Name>/<Name>_TRAIN.ts`` instead of aeon's) and
    ``fortunes`` (instead of ``/usr/share/games/fortunes``); paths are read as given."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}; for validation use SequenceSplit.split")
    check_normalize(normalize)
    if max_length is not None and not 1 <= max_length <= MAX_LENGTH:
        raise DatasetError(f"max_length={max_length} is outside 1..{MAX_LENGTH:,}")
    readers = plan(spec, root)
    train = readers.train(max_length)
    classes = train.classes or class_order(train.labels)
    targets = encode(train, classes, "the file's" if readers.test is None else "the training split's")
    if readers.test is None:
        keep, held = _held_out(targets, seed, train.source)
        check_classes(targets[keep], classes, train.source, f" once {TEST_FRACTION:.0%} is held out as test")
        scale = _stats(train, keep, normalize, stats)
        return _finish(train, targets, keep if split == "train" else held, classes, readers.source, normalize, scale)
    check_classes(targets, classes, train.source)
    scale = _stats(train, None, normalize, stats)
    if split == "train":
        return _finish(train, targets, None, classes, readers.source, normalize, scale)
    test = readers.test(max_length)
    if test.kind != train.kind:
        raise DatasetError(f"{test.source}: holds {test.kind}, but the training file {train.source} holds {train.kind}")
    if test.kind == "series" and test.values.shape[1] != train.values.shape[1]:
        raise DatasetError(
            f"{test.source}: {test.values.shape[1]} channels, but the training file has {train.values.shape[1]}"
        )
    # A training .npz that names its classes makes a test .npz's integer labels indices into them.
    by_index = train.classes is not None and test.classes is None
    test_targets = encode(test, classes, "the training split's", by_index)
    return _finish(test, test_targets, None, classes, readers.source, normalize, scale)


def _stats(items: ReadItems, rows: np.ndarray | None, normalize: str, given: Stats | None) -> Stats | None:
    """The training split's per-channel mean and std where ``normalize`` is "dataset" (``given``:
    a saved model's, used as they are)."""
    if normalize != "dataset" or items.kind != "series":
        return None
    if given is not None:
        if len(given[0]) != items.values.shape[1]:
            raise DatasetError(
                f"{items.source}: {items.values.shape[1]} channels, but the model's mean/std have {len(given[0])}"
            )
        return given
    if rows is None:
        return channel_stats(items.values, items.lengths)
    return channel_stats(items.values[rows], items.lengths[rows])


def _held_out(targets: np.ndarray, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        keep, held = split_indices(torch.from_numpy(targets), TEST_FRACTION, seed, stratify=True)
    except ValueError:
        raise DatasetError(
            f"{source}: {len(targets)} items are too few to hold {TEST_FRACTION:.0%} out as test"
        ) from None
    return keep.numpy(), held.numpy()


def _finish(
    items: ReadItems,
    targets: np.ndarray,
    rows: np.ndarray | None,
    classes: tuple[str, ...],
    source: str,
    normalize: str,
    stats: Stats | None,
) -> SequenceSplit:
    values, lengths = items.values, items.lengths
    if rows is not None:
        lengths, targets = lengths[rows], targets[rows]
        values = values[rows, :, : int(lengths.max())]
    if items.kind == "series":  # in place: the reader's array (or the rows' copy) is ours
        values = normalized(values, lengths, normalize, stats)
    mean, std = stats if stats is not None else (None, None)
    return SequenceSplit(np.ascontiguousarray(values), lengths, targets, tuple(classes), items.kind, source, mean, std)
