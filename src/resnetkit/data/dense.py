"""Datasets for dense tasks (segmentation and detection) and the collates that batch them."""

from __future__ import annotations

from pathlib import Path

import torch

from .dense_folders import dense_folder_splits, load_coco_folder, load_mask_folder
from .errors import DatasetError
from .memory import InMemoryDataset
from .registry import canonical_name, load_dataset
from .scenes import SceneDataset, SceneSpec, load_scenes

SCENES = "fashion-mnist-scenes"
DENSE_DATASETS = (SCENES, "a folder (train/images + train/masks, or COCO train.json + train/)")


def is_scenes(name: str) -> bool:
    return name.lower().replace("_", "-") == SCENES


def _is_folder(name: str) -> bool:
    return ("/" in name or Path(name).is_dir()) and not is_scenes(name)


def _check_name(name: str) -> None:
    if _is_folder(name):
        if not Path(name).is_dir():
            raise DatasetError(f"{name}: dataset folder not found")
        return
    if not is_scenes(name):
        hint = " (a classification dataset: train it with --task classification)" if canonical_name(name) else ""
        raise DatasetError(f"unknown dense dataset {name!r}{hint}; dense tasks train on: {', '.join(DENSE_DATASETS)}")


def dense_splits(name: str) -> tuple[str, ...]:
    _check_name(name)
    if _is_folder(name):
        splits = dense_folder_splits(Path(name))
        if "train" not in splits:
            raise DatasetError(f"{name}: no train/ split (and no train.json)")
        return splits
    return ("train", "test")


def load_dense_dataset(
    name: str,
    split: str,
    data_dir: str | None,
    download: bool,
    spec: SceneSpec,
    seed: int,
    target: str,
    image_size: int = 224,
) -> SceneDataset:
    """Split ``split`` of a dense dataset, returning ``target`` ("mask" or "boxes") per image.
    The scenes' garments come from the same split of Fashion-MNIST (the test split's from its test
    images); a folder is read as ``dense_folders`` describes, at ``image_size``."""
    _check_name(name)
    if _is_folder(name):
        if target == "mask":
            return load_mask_folder(Path(name), split, image_size).with_target(target)
        return load_coco_folder(Path(name), split, image_size).with_target(target)
    garments = load_dataset("fashion-mnist", split, data_dir, download)
    assert isinstance(garments, InMemoryDataset)
    return load_scenes(garments.images, garments.labels, split, spec, seed).with_target(target)


class MaskCollate:
    """(uint8 images, uint8 masks) -> (normalized float images, int64 masks)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        self.mean = torch.tensor(mean).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std).view(1, -1, 1, 1) * 255

    def __call__(self, batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([b[0] for b in batch]).float()
        return (images - self.mean) / self.std, torch.stack([b[1] for b in batch]).long()


class BoxCollate:
    """(uint8 images, {"boxes", "labels", "image_id"}) -> (float images in [0, 1], the target dicts)."""

    def __call__(self, batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[torch.Tensor, list[dict]]:
        images = torch.stack([b[0] for b in batch]).float() / 255
        return images, [dict(b[1]) for b in batch]
