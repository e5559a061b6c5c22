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
    """Class indices from ``"0-4"``, ``"5,7,9"``, ``"Sandal,Bag"`` or a mix, in the order given."""
    chosen: list[int] = []
    by_name = {name.lower(): i for i, name in enumerate(names)}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        first, dash, last = part.partition("-")
        if dash and first.strip().isdigit() and last.strip().isdigit():
            chosen += range(int(first), int(last) + 1)
        elif part.isdigit():
            chosen.append(int(part))
        elif part.lower() in by_name:
            chosen.append(by_name[part.lower()])
        else:
            raise DatasetError(
                f"data.classes={spec!r}: {part!r} is neither a class index nor one of {', '.join(names)}"
            )
    bad = [i for i in chosen if not 0 <= i < len(names)]
    if bad:
        raise DatasetError(f"data.classes={spec!r}: index {bad[0]} is out of range (0..{len(names) - 1})")
    if len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise DatasetError(f"data.classes={spec!r}: expected at least two distinct classes")
    return chosen


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
