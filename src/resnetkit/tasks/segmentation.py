"""Semantic segmentation: per-pixel cross-entropy (plus the auxiliary head's, weighted 0.5 as in
torchvision's reference recipe), pixel accuracy and mean IoU over a confusion matrix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dense import MaskCollate
from ..data.scenes import IGNORE_INDEX
from .base import Autocast, Batch, Reduce
from .dense import DenseTask

Outputs = dict[str, torch.Tensor]


@dataclass
class SegmentationResult:
    loss: float
    n: int
    confusion: torch.Tensor = field(repr=False)  # [true, predicted] pixel counts

    @property
    def iou(self) -> torch.Tensor:
        """Per-class IoU; NaN for a class absent from both the labels and the predictions."""
        c = self.confusion.double()
        tp = c.diagonal()
        union = c.sum(0) + c.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    @property
    def miou(self) -> float:
        """Mean IoU over the classes that occur (in labels or predictions), background included, as VOC scores it."""
        iou = self.iou
        return float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else 0.0

    @property
    def pixel_acc(self) -> float:
        return float(self.confusion.diagonal().sum()) / max(float(self.confusion.sum()), 1.0)

    def scalars(self) -> dict[str, float]:
        return {"loss": self.loss, "miou": self.miou, "pixel_acc": self.pixel_acc}

    def as_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        names = names or [str(i) for i in range(len(self.confusion))]
        return {
            "miou": self.miou,
            "pixel_acc": self.pixel_acc,
            "loss": self.loss,
            "n": self.n,
            "iou": {n: (None if v != v else v) for n, v in zip(names, self.iou.tolist(), strict=True)},
            "confusion": self.confusion.tolist(),
        }


def segmentation_loss(outputs: Outputs, masks: torch.Tensor, aux_weight: float = 0.5) -> torch.Tensor:
    loss = F.cross_entropy(outputs["out"].float(), masks, ignore_index=IGNORE_INDEX)
    if "aux" in outputs and aux_weight:
        loss = loss + aux_weight * F.cross_entropy(outputs["aux"].float(), masks, ignore_index=IGNORE_INDEX)
    return loss


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    keep = target != IGNORE_INDEX
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module,
    loader: Iterable[Batch],
    num_classes: int,
    device: torch.device | str = "cpu",
    autocast: Autocast | None = None,
    reduce: Reduce | None = None,
    aux_weight: float = 0.5,
) -> SegmentationResult:
    """Loss (as training weighs it), and the pixel confusion matrix summed over processes."""
    was_training = model.training
    model.eval()
    stats = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, images
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with autocast() if autocast else contextlib.nullcontext():
            outputs = model(x)
        stats += torch.stack(
            [
                segmentation_loss(outputs, y, aux_weight).double() * len(y),
                torch.tensor(float(len(y)), device=device).double(),
            ]
        )
        confusion += confusion_matrix(outputs["out"].argmax(1), y, num_classes)
    if reduce is not None:
        stats, confusion = reduce(stats), reduce(confusion)
    model.train(was_training)
    n = max(int(stats[1]), 1)
    return SegmentationResult(loss=float(stats[0]) / n, n=int(stats[1]), confusion=confusion.cpu())


@dataclass
class Segmentation(DenseTask):
    name: ClassVar[str] = "segmentation"
    train_metrics: ClassVar[tuple[str, ...]] = ("loss", "pixel_acc")
    monitor: ClassVar[str] = "miou"
    target: ClassVar[str] = "mask"

    aux_weight: float = 0.5

    def collate(self, dataset: Any) -> Any:
        return MaskCollate(dataset.mean, dataset.std)

    def loss(self, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(outputs, targets, self.aux_weight)

    def step_stats(self, loss: torch.Tensor, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        n = len(targets)
        keep = targets != IGNORE_INDEX
        right = (outputs["out"].argmax(1) == targets) & keep
        # Per image, so a batch's sum over images divides by the image count like the loss.
        acc = right.flatten(1).sum(1).double() / keep.flatten(1).sum(1).clamp(min=1).double()
        return torch.stack([loss.detach().double() * n, acc.sum()])

    def evaluate(
        self,
        model: nn.Module,
        loader: Iterable[Batch],
        device: torch.device,
        autocast: Autocast | None = None,
        reduce: Reduce | None = None,
    ) -> SegmentationResult:
        num_classes = int(cast(Any, model).num_classes)
        return evaluate_segmentation(model, loader, num_classes, device, autocast, reduce, self.aux_weight)
