"""Subsets for transfer learning: some of a dataset's classes, and K labelled images per class.

A few-label experiment is only as good as its draw: the subset is seeded (the same K images every
time for one seed), class-balanced (exactly K of every class), and recorded, so a result can be
traced to the images it learned from."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from .errors import DatasetError
from .folder import FolderDataset
from .memory import InMemoryDataset

LabelledDataset = InMemoryDataset | FolderDataset


def dataset_labels(ds: LabelledDataset) -> torch.Tensor:
    return ds.labels if isinstance(ds, InMemoryDataset) else torch.tensor(ds.targets, dtype=torch.int64)


def parse_classes(spec: str, names: Sequence[str]) -> list[int]:
    """Class indices from ``"0-4"``, ``"5,7,9"``, ``"Sandal,Bag"`` or a mix, in the order given.

    Each index and range is checked against the dataset's ``len(names)`` classes before a range is
    expanded, and a class given twice is refused as it is met: the list never outgrows the dataset."""
    chosen: list[int] = []
    seen: set[int] = set()
    by_name = {name.lower(): i for i, name in enumerate(names)}
    top = len(names) - 1
    where = f"data.classes={_short(spec)!r}"

    def index(text: str) -> int:
        # digits only, and few enough of them that int() is cheap and exact; past the top is out of range
        value = int(text) if len(text) <= 18 else top + 1
        if not 0 <= value <= top:
            raise DatasetError(f"{where}: index {_short(text)} is out of range (0..{top})")
        return value

    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        first, dash, last = (t.strip() for t in part.partition("-"))
        if dash and first.isdecimal() and last.isdecimal():
            lo, hi = index(first), index(last)
            if hi < lo:
                raise DatasetError(f"{where}: range {part!r} runs backwards (write {hi}-{lo})")
            picked = range(lo, hi + 1)
        elif part.isdecimal():
            picked = range(index(part), index(part) + 1)
        elif part.lower() in by_name:
            picked = range(by_name[part.lower()], by_name[part.lower()] + 1)
        else:
            raise DatasetError(f"{where}: {_short(part)!r} is neither a class index nor one of {', '.join(names)}")
        for i in picked:
            if i in seen:
                raise DatasetError(f"{where}: class {i} is given twice; name each class once")
            seen.add(i)
            chosen.append(i)
    if len(chosen) < 2:
        raise DatasetError(f"{where}: expected at least two distinct classes")
    return chosen


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def select_classes(ds: LabelledDataset, keep: Sequence[int]) -> LabelledDataset:
    """The samples of classes ``keep``, relabelled 0..len(keep)-1 in that order; the
    normalization statistics stay the whole dataset's."""
    labels = dataset_labels(ds)
    remap = torch.full((len(ds.classes),), -1, dtype=torch.int64)
    remap[torch.tensor(list(keep))] = torch.arange(len(keep))
    rows = torch.nonzero(remap[labels] >= 0).squeeze(1)
    classes = [ds.classes[i] for i in keep]
    sub = ds.subset(rows)
    if isinstance(sub, InMemoryDataset):
        return InMemoryDataset(sub.images, remap[sub.labels], classes, sub.mean, sub.std, sub.index)
    out = copy.copy(sub)
    out.samples = [(path, int(remap[label])) for path, label in sub.samples]
    out.targets = [label for _, label in out.samples]
    out.classes = classes
    out.class_to_idx = {name: i for i, name in enumerate(classes)}
    return out


def balanced_indices(labels: torch.Tensor, per_class: int, num_classes: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of exactly ``per_class`` samples of each class, drawn with a seeded
    permutation: the same draw every call, and a draw for K is contained in the draw for K+1."""
    if per_class < 1:
        raise DatasetError(f"labels_per_class must be at least 1, got {per_class}")
    counts = torch.bincount(labels, minlength=num_classes)
    short = [(c, int(n)) for c, n in enumerate(counts.tolist()) if n < per_class]
    if short:
        c, n = short[0]
        raise DatasetError(f"labels_per_class={per_class}: class {c} has only {n} training image(s)")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    ordered = labels[order]
    # Rank of each sample among its class in the permuted order: the first K of each class win.
    _, by_label = torch.sort(ordered, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[by_label] = torch.arange(len(order)) - starts[ordered[by_label]]
    return order[rank < per_class].sort().values


def labelled_subset(ds: LabelledDataset, per_class: int, seed: int = 0) -> LabelledDataset:
    return ds.subset(balanced_indices(dataset_labels(ds), per_class, len(ds.classes), seed))


def subset_record(ds: LabelledDataset) -> dict[str, Any]:
    """Which images a (sub)set holds: positions in the split as loaded, or file paths."""
    if isinstance(ds, InMemoryDataset):
        return {"index": ds.source_index.tolist(), "label": ds.labels.tolist()}
    return {"path": [str(path) for path, _ in ds.samples], "label": list(ds.targets)}
