"""Image classification: cross-entropy (optionally label-smoothed), top-1/top-5 accuracy, per-class
accuracy and the confusion matrix, with optional flip test-time augmentation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DatasetError, ImageDataset, InMemoryDataset, dataset_splits, load_dataset
from ..data.dense import is_scenes
from ..models import ResNetBase, create_model
from .base import Autocast, Batch, Reduce, Task


@dataclass
class EvalResult:
    top1: float
    top5: float
    loss: float
    n: int
    confusion: torch.Tensor = field(repr=False)  # [true, predicted] counts

    @property
    def per_class(self) -> list[float]:
        totals = self.confusion.sum(1).clamp(min=1)
        return (self.confusion.diagonal() / totals).tolist()

    def scalars(self) -> dict[str, float]:
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5}

    def as_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        names = names or [str(i) for i in range(len(self.confusion))]
        return {
            "top1": self.top1,
            "top5": self.top5,
            "loss": self.loss,
            "n": self.n,
            "per_class": dict(zip(names, self.per_class, strict=True)),
            "confusion": self.confusion.tolist(),
        }


def model_logits(model: nn.Module, x: torch.Tensor, tta_flip: bool = False) -> torch.Tensor:
    """``model(x)``, or with ``tta_flip`` the mean of the logits of ``x`` and of its mirror."""
    logits: torch.Tensor = model(x)
    return (logits + model(x.flip(-1))) / 2 if tta_flip else logits


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    num_classes: int,
    autocast: Autocast | None = None,
    tta_flip: bool = False,
    device: torch.device | str = "cpu",
    reduce: Reduce | None = None,
) -> EvalResult:
    """Top-1/top-5/loss/confusion of ``model`` over ``loader``; ``reduce`` sums a tensor over
    processes in distributed runs (identity otherwise)."""
    was_training = model.training
    model.eval()
    k = min(5, num_classes)
    stats = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top1, top5, n
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast() if autocast else contextlib.nullcontext():
            logits = model_logits(model, x, tta_flip).float()
        topk = logits.topk(k, dim=1).indices
        stats += torch.stack(
            [
                F.cross_entropy(logits, y, reduction="sum").double(),
                (topk[:, 0] == y).sum().double(),
                (topk == y[:, None]).any(1).sum().double(),
                torch.tensor(float(len(y)), dtype=torch.float64, device=device),
            ]
        )
        confusion += torch.bincount(y * num_classes + topk[:, 0], minlength=num_classes * num_classes)
    if reduce is not None:
        stats, confusion = reduce(stats), reduce(confusion)
    model.train(was_training)
    n = max(int(stats[3]), 1)
    return EvalResult(
        top1=float(stats[1]) / n,
        top5=float(stats[2]) / n,
        loss=float(stats[0]) / n,
        n=int(stats[3]),
        confusion=confusion.view(num_classes, num_classes).cpu(),
    )


@dataclass
class Classification(Task):
    """``label_smoothing`` (Szegedy et al. 2016) softens the training targets; ``tta_flip``
    evaluates on each image and its mirror."""

    name: ClassVar[str] = "classification"
    train_metrics: ClassVar[tuple[str, ...]] = ("loss", "top1")
    monitor: ClassVar[str] = "top1"
    higher_is_better: ClassVar[bool] = True

    label_smoothing: float = 0.0
    tta_flip: bool = False

    def __post_init__(self) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def splits(self, name: str) -> tuple[str, ...]:
        if is_scenes(name):
            raise DatasetError(f"{name} is a dense dataset: train on it with --task segmentation or --task detection")
        return dataset_splits(name)

    def load_dataset(
        self, name: str, split: str, data_dir: str | None, download: bool, image_size: int
    ) -> ImageDataset:
        return load_dataset(name, split, data_dir, download, image_size=image_size)

    def dataset_meta(self, train: ImageDataset, name: str, image_size: int) -> dict[str, Any]:
        if len(train.classes) < 2:
            raise ValueError(
                f"{name}: only {len(train.classes)} class folder/label; classification needs at least two classes"
            )
        size = train.image_size if isinstance(train, InMemoryDataset) else (image_size, image_size)
        return {
            "name": name,
            "classes": list(train.classes),
            "mean": list(train.mean),
            "std": list(train.std),
            "in_chans": train.in_chans,
            "image_size": list(size),
        }

    def build_model(self, model_name: str, meta: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
        return create_model(model_name, num_classes=len(meta["classes"]), in_chans=meta["in_chans"], **overrides)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss: torch.Tensor = self.criterion(outputs.float(), targets)
        return loss

    def step_stats(self, loss: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = len(targets)
        return torch.stack([loss.detach().double() * n, (outputs.argmax(1) == targets).sum().double()])

    def evaluate(
        self,
        model: nn.Module,
        loader: Iterable[Batch],
        device: torch.device,
        autocast: Autocast | None = None,
        reduce: Reduce | None = None,
    ) -> EvalResult:
        num_classes = int(cast(ResNetBase, model).num_classes)
        return evaluate(model, loader, num_classes, autocast, self.tta_flip, device, reduce)
