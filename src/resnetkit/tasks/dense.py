"""What segmentation and detection share: the scenes (or other dense datasets), their meta, and
a model that must be a dense one of the right task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from ..data import DatasetError
from ..data.dense import dense_splits, load_dense_dataset
from ..data.scenes import SceneDataset, SceneSpec
from ..models import create_model, is_model, model_task
from .base import Task


@dataclass
class DenseTask(Task):
    target: ClassVar[str]  # what each image comes with: "mask" or "boxes"

    scenes: SceneSpec = field(default_factory=SceneSpec)
    seed: int = 0

    def splits(self, name: str) -> tuple[str, ...]:
        return dense_splits(name)

    def load_dataset(self, name: str, split: str, data_dir: str | None, download: bool, image_size: int) -> Any:
        return load_dense_dataset(name, split, data_dir, download, self.scenes, self.seed, self.target, image_size)

    def dataset_meta(self, train: SceneDataset, name: str, image_size: int) -> dict[str, Any]:
        return {
            "name": name,
            "classes": list(train.classes),
            "mean": list(train.mean),
            "std": list(train.std),
            "in_chans": train.in_chans,
            "image_size": list(train.image_size),
            "task": self.name,
        }

    def check_model(self, model_name: str) -> None:
        if is_model(model_name) and model_task(model_name) != self.name:
            raise DatasetError(
                f"--model {model_name} is a {model_task(model_name)} model; --task {self.name} needs one of "
                f"`resnetkit info --task {self.name}`"
            )

    def build_model(self, model_name: str, meta: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
        self.check_model(model_name)
        options = {**self.model_defaults(meta), **overrides}
        return create_model(model_name, num_classes=len(meta["classes"]), in_chans=meta["in_chans"], **options)

    def model_defaults(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {}
