"""Loading a dataset by name (`DATASETS`) or from an image folder path."""

from __future__ import annotations

import os
from pathlib import Path

from .catalog import DATASETS, DatasetInfo
from .cifar import CIFAR_LAYOUTS, load_cifar
from .digits import load_digits_split
from .errors import DatasetError
from .folder import FolderDataset
from .idx import load_mnist_split
from .memory import InMemoryDataset, sample_indices
from .sources import locate_dataset

ImageDataset = InMemoryDataset | FolderDataset

_ALIASES = {name.replace("-", ""): name for name in DATASETS}


def canonical_name(name: str) -> str | None:
    """The registered name that `name` spells ("CIFAR-10", "fashion_mnist"...), else None."""
    return _ALIASES.get(name.lower().replace("-", "").replace("_", ""))


def dataset_info(name: str) -> DatasetInfo:
    canonical = canonical_name(name)
    if canonical is None:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[canonical]


def load_dataset(
    name_or_path: str | Path,
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool = True,
    *,
    image_size: int = 224,
    mode: str = "RGB",
) -> ImageDataset:
    """A named dataset in memory, or an image folder streamed from disk.

    A path (a `Path`, a string with a separator, or an existing folder that is not a known name)
    is an image folder; with `train/` and `test/` (or `val/`) subfolders the split picks one, otherwise the
    whole folder is used. `image_size` and `mode` apply to folders only; `split="train"` turns on
    their random crops and flips. Named datasets have "train" and "test"; for a validation set
    use `InMemoryDataset.split`.
    """
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or "/" in text or os.sep in text
    name = None if is_path else canonical_name(text)
    if name is None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if Path(text).is_dir():
            return FolderDataset(_folder_split(Path(text), split), image_size, split == "train", mode)
        if is_path:
            raise DatasetError(f"{text}: image folder not found")
        raise DatasetError(f"unknown dataset {text!r} (and no such folder); known datasets: {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}; for validation use InMemoryDataset.split")
    if name == "digits":
        images, labels = load_digits_split(split)
    elif name in CIFAR_LAYOUTS:
        images, labels, _ = load_cifar(locate_dataset(name, data_dir, download), split, name)
    else:
        images, labels = load_mnist_split(locate_dataset(name, data_dir, download), split)
    info = DATASETS[name]
    return InMemoryDataset(images, labels, list(info.classes), info.mean, info.std)


def dataset_splits(name_or_path: str | Path) -> tuple[str, ...]:
    """The splits a dataset really has: ``train`` and ``test`` for named datasets; for an image
    folder, ``train`` plus each of its ``val/`` and ``test/`` subfolders (a flat folder has only
    ``train``: whoever trains on it must hold out a split of their own)."""
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or "/" in text or os.sep in text
    if not is_path and canonical_name(text) is not None:
        return ("train", "test")
    root = Path(text)
    if not (root / "train").is_dir():
        return ("train",)
    return ("train", *(sub for sub in ("val", "test") if (root / sub).is_dir()))


def _folder_split(root: Path, split: str) -> Path:
    held_out = [root / sub for sub in ("test", "val") if (root / sub).is_dir()]
    if not (root / "train").is_dir() or not held_out:
        return root
    if split == "train":
        return root / "train"
    return root / split if (root / split).is_dir() else held_out[0]


def sample_subset(ds: ImageDataset, n: int, seed: int = 0) -> ImageDataset:
    """``n`` samples drawn without replacement (seeded: the same ones every call), keeping classes
    and normalization; the whole dataset when it has no more than ``n``."""
    return ds if n >= len(ds) else ds.subset(sample_indices(len(ds), n, seed))
