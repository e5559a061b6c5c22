"""Semantic segmentation: per-pixel cross-entropy (plus the auxiliary head's, weighted 0.5 as in
torchvision's reference recipe), pixel accuracy and mean IoU over a confusion matrix."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..artifacts import model_card
from ..data.dense import MaskCollate
from ..data.scenes import IGNORE_INDEX
from .base import Autocast, Batch, PredictOptions, Prepared, Reduce, TensorSpec
from .dense import DenseNetwork, DenseTask
from .pictures import draw_mask

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
    """Cross-entropy per labelled pixel. A batch whose every pixel is the ignore label (images
    left unlabelled) adds 0 and no gradient, where the mean of ``F.cross_entropy`` is 0/0 = NaN."""
    labelled = (masks != IGNORE_INDEX).sum().clamp(min=1)

    def ce(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX, reduction="sum") / labelled

    loss = ce(outputs["out"])
    if "aux" in outputs and aux_weight:
        loss = loss + aux_weight * ce(outputs["aux"])
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
    labels: ClassVar[dict[str, str]] = {"miou": "mIoU", "pixel_acc": "pixel accuracy"}

    aux_weight: float = 0.5

    def collate(self, dataset: Any) -> Any:
        return MaskCollate(dataset.mean, dataset.std)

    def check_batch(self, inputs: Any, targets: Any) -> str | None:
        # Cross-entropy over no pixel at all is 0/0.
        if isinstance(targets, torch.Tensor) and bool((targets == IGNORE_INDEX).all()):
            return f"every pixel of the masks is the ignore label ({IGNORE_INDEX}): nothing to learn from"
        return super().check_batch(inputs, targets)

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

    # ---- A saved segmenter in use -------------------------------------------------------------------

    def model_input(self, image: torch.Tensor, model: Any) -> torch.Tensor:
        card, chans = model_card(model), int(model.in_chans)
        mean = torch.tensor(card.mean or [0.5] * chans).view(-1, 1, 1)
        std = torch.tensor(card.std or [0.25] * chans).view(-1, 1, 1)
        return (image.float() / 255 - mean) / std

    def predict_batch(self, model: Any, inputs: list[torch.Tensor], options: PredictOptions) -> list[torch.Tensor]:
        """The class of each pixel, per input at its own size (images of one size run together)."""
        masks: list[torch.Tensor | None] = [None] * len(inputs)
        sizes: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(inputs):
            sizes.setdefault(tuple(x.shape), []).append(i)
        for group in sizes.values():
            out = model(torch.stack([inputs[i] for i in group]))["out"].argmax(1).cpu()
            for i, mask in zip(group, out, strict=True):
                masks[i] = mask
        return [m for m in masks if m is not None]

    def encode(
        self, output: torch.Tensor, prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        mask = at_size(output, prepared.size)
        counts = torch.bincount(mask.flatten(), minlength=len(classes or [])).double() / mask.numel()
        shares = {(classes[c] if classes else str(c)): float(v) for c, v in enumerate(counts.tolist()) if v > 0}
        record: dict[str, Any] = {"classes": shares}
        if options.mask:
            record["mask"] = mask_png(mask)
        return record

    def tensor_outputs(self, model: Any) -> list[TensorSpec]:
        return [TensorSpec("mask", "INT32", (-1, -1), fill=-1)]

    def tensor_encode(
        self, output: torch.Tensor, prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        return {"mask": at_size(output, prepared.size).numpy().astype(np.int32)}

    def describe(self, record: Mapping[str, Any]) -> str:
        return ", ".join(f"{n} {100 * v:.1f}%" for n, v in record["classes"].items())

    def draw(self, output: torch.Tensor, prepared: Prepared, classes: list[str] | None, options: PredictOptions) -> Any:
        return draw_mask(prepared.image, at_size(output, prepared.size))

    def draw_truth(self, image: torch.Tensor, mask: torch.Tensor, classes: list[str] | None) -> Any:
        """A scene's labelled mask drawn as a prediction is."""
        return draw_mask(image, mask.long())

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        lines = [
            f"mIoU {100 * report['miou']:.2f}%   pixel accuracy {100 * report['pixel_acc']:.2f}%",
            "per-class IoU:",
        ]
        lines += [f"  {n:<14} " + ("     -" if v is None else f"{100 * v:6.2f}%") for n, v in report["iou"].items()]
        return lines

    def export_network(self, model: Any) -> SegmentationNetwork:
        return SegmentationNetwork(model)

    def parity_inputs(self, network: Any, count: int) -> tuple[torch.Tensor, bool]:
        x, real = self.scene_inputs(network, count)
        if not real:
            return x, False
        card = model_card(network)
        mean = torch.tensor(card.mean or [0.5]).view(1, -1, 1, 1)
        std = torch.tensor(card.std or [0.25]).view(1, -1, 1, 1)
        return (x - mean) / std, True


def at_size(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A class mask at ``size`` (nearest neighbour: classes are not blended)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long()


def mask_png(mask: torch.Tensor) -> str:
    """A class mask as a base64 PNG whose pixel values are the class indices (8-bit, or 16-bit
    past 255 classes): what a client decodes with any PNG reader."""
    values = mask.cpu().numpy()
    picture = (
        Image.fromarray(values.astype(np.uint8))
        if values.max(initial=0) < 256
        else Image.fromarray(values.astype(np.uint16))
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class SegmentationNetwork(DenseNetwork):
    """Normalized images ``[N, C, H, W]`` in, ``logits`` ``[N, classes, H, W]`` out (the head's
    output already upsampled to the input's size; the argmax is left to the caller)."""

    output_names = ["logits"]  # noqa: RUF012  # a fixed list a class states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)["out"]
        return out

    def post_processing(self) -> str:
        return "none: the graph ends with the logits upsampled to the input size; argmax per pixel gives the mask"
