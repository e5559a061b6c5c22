"""Accuracy of a model on a loader: top-1, top-5, per-class accuracy and the confusion matrix."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


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

    def as_dict(self, classes: list[str] | None = None) -> dict:
        names = classes or [str(i) for i in range(len(self.confusion))]
        return {
            "top1": self.top1, "top5": self.top5, "loss": self.loss, "n": self.n,
            "per_class": dict(zip(names, self.per_class)),
            "confusion": self.confusion.tolist(),
        }


def model_logits(model: nn.Module, x: torch.Tensor, tta_flip: bool = False) -> torch.Tensor:
    """``model(x)``, or with ``tta_flip`` the mean of the logits of ``x`` and of its mirror."""
    logits = model(x)
    return (logits + model(x.flip(-1))) / 2 if tta_flip else logits


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int, autocast=None, tta_flip: bool = False,
             device: torch.device | str = "cpu", reduce=None) -> EvalResult:
    """``reduce`` sums a tensor over processes in distributed runs (identity otherwise)."""
    import contextlib

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
        stats += torch.stack([
            F.cross_entropy(logits, y, reduction="sum").double(),
            (topk[:, 0] == y).sum().double(),
            (topk == y[:, None]).any(1).sum().double(),
            torch.tensor(float(len(y)), dtype=torch.float64, device=device),
        ])
        confusion += torch.bincount(y * num_classes + topk[:, 0], minlength=num_classes * num_classes)
    if reduce is not None:
        stats, confusion = reduce(stats), reduce(confusion)
    model.train(was_training)
    n = max(int(stats[3]), 1)
    return EvalResult(
        top1=float(stats[1]) / n, top5=float(stats[2]) / n, loss=float(stats[0]) / n, n=int(stats[3]),
        confusion=confusion.view(num_classes, num_classes).cpu(),
    )
