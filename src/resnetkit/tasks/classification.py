"""Image classification: cross-entropy (optionally label-smoothed), top-1/top-5 accuracy, per-class
accuracy and the confusion matrix, with optional flip test-time augmentation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..artifacts import model_card, model_dataset
from ..artifacts.cards import MAX_TTA_SHIFT
from ..data import DatasetError, ImageDataset, InMemoryDataset, dataset_splits, eval_loader, load_dataset
from ..data.dense import is_scenes
from ..models import ResNetBase, create_model
from .base import Autocast, Batch, PredictOptions, Prepared, Reduce, Task, TensorSpec
from .inputs import fit, input_size, input_spec, normalize


@dataclass
class EvalResult:
    top1: float
    top5: float
    loss: float
    n: int
    confusion: torch.Tensor = field(repr=False)  # [true, predicted] counts
    # With flip TTA, the top-1 of the unmirrored view alone: the same forward passes give it free.
    plain_top1: float | None = None

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
            **({} if self.plain_top1 is None else {"plain_top1": self.plain_top1}),
            "per_class": dict(zip(names, self.per_class, strict=True)),
            "confusion": self.confusion.tolist(),
        }


def shift_x(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """``x`` moved ``pixels`` to the right (left where negative), the edge column repeated into
    the gap, as a pad-and-crop augmentation would see it."""
    p = abs(pixels)
    padded = F.pad(x, (p, p, 0, 0), mode="replicate")
    return padded[..., p - pixels : p - pixels + x.shape[-1]]


def tta_views(x: torch.Tensor, flip: bool = False, shift: int = 0) -> list[torch.Tensor]:
    """The views test-time augmentation averages over, ``x`` first: with ``flip`` its mirror, and
    with ``shift`` each of those moved ``shift`` pixels left and right (the multi-view testing of
    Krizhevsky et al. 2012 and He et al. 2015 §3.4, as small translations)."""
    if not 0 <= shift <= MAX_TTA_SHIFT:
        raise ValueError(f"TTA shift {shift}: pixels from 0 (off) to {MAX_TTA_SHIFT}")
    views = [x, x.flip(-1)] if flip else [x]
    if shift:
        views += [shift_x(v, d) for v in list(views) for d in (shift, -shift)]
    return views


def model_logits(model: nn.Module, x: torch.Tensor, tta_flip: bool = False, tta_shift: int = 0) -> torch.Tensor:
    """``model(x)``, or the mean of the logits of ``x``'s ``tta_views``."""
    views = tta_views(x, tta_flip, tta_shift)
    logits: torch.Tensor = model(views[0])
    return sum((model(v) for v in views[1:]), logits) / len(views) if len(views) > 1 else logits


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    num_classes: int,
    autocast: Autocast | None = None,
    tta_flip: bool = False,
    device: torch.device | str = "cpu",
    reduce: Reduce | None = None,
    tta_shift: int = 0,
) -> EvalResult:
    """Top-1/top-5/loss/confusion of ``model`` over ``loader``, averaging the logits of the
    ``tta_views``; ``reduce`` sums a tensor over processes in distributed runs (identity otherwise)."""
    tta = tta_flip or tta_shift > 0
    was_training = model.training
    model.eval()
    k = min(5, num_classes)
    stats = torch.zeros(5, dtype=torch.float64, device=device)  # loss sum, top1, top5, n, unmirrored top1
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast() if autocast else contextlib.nullcontext():
            views = tta_views(x, tta_flip, tta_shift)
            plain = model(views[0]).float()
            logits = sum((model(v).float() for v in views[1:]), plain) / len(views) if tta else plain
        topk = logits.topk(k, dim=1).indices
        stats += torch.stack(
            [
                F.cross_entropy(logits, y, reduction="sum").double(),
                (topk[:, 0] == y).sum().double(),
                (topk == y[:, None]).any(1).sum().double(),
                torch.tensor(float(len(y)), dtype=torch.float64, device=device),
                (plain.argmax(1) == y).sum().double(),
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
        plain_top1=float(stats[4]) / n if tta else None,
    )


@dataclass
class Classification(Task):
    """``label_smoothing`` (Szegedy et al. 2016) softens the training targets; ``tta_flip``
    evaluates on each image and its mirror, ``tta_shift`` on each also moved that many pixels left
    and right (``tta_views``)."""

    name: ClassVar[str] = "classification"
    train_metrics: ClassVar[tuple[str, ...]] = ("loss", "top1")
    monitor: ClassVar[str] = "top1"
    higher_is_better: ClassVar[bool] = True
    labels: ClassVar[dict[str, str]] = {"top1": "top-1", "top5": "top-5"}
    class_subsets: ClassVar[bool] = True
    explainable: ClassVar[bool] = True

    label_smoothing: float = 0.0
    tta_flip: bool = False
    tta_shift: int = 0

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
        return evaluate(model, loader, num_classes, autocast, self.tta_flip, device, reduce, self.tta_shift)

    # ---- A saved classifier in use ----------------------------------------------------------------

    def reading(self, model: Any) -> tuple[str, int | None]:
        spec = input_spec(model)
        return spec.mode, max(spec.image_size)

    def prepare(self, image: torch.Tensor, name: str, model: Any) -> Prepared:
        spec = input_spec(model)
        fitted = fit(image, spec)
        return Prepared(name, fitted, normalize(fitted, spec), (int(image.shape[-2]), int(image.shape[-1])))

    def predict_batch(self, model: Any, inputs: list[torch.Tensor], options: PredictOptions) -> list[torch.Tensor]:
        """Logits (float32) of each input; with TTA its other views join the same batch."""
        card = model_card(model)
        flip = card.tta_flip if options.tta_flip is None else options.tta_flip
        shift = card.tta_shift if options.tta_shift is None else options.tta_shift
        x = torch.stack(inputs)
        views = tta_views(x, flip, shift)
        if len(views) == 1:
            return list(model(x).float())
        every = model(torch.cat(views)).float()
        return list(every.view(len(views), len(x), *every.shape[1:]).mean(0))

    def encode(
        self, output: torch.Tensor, prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        probs, top = output.float().softmax(0).topk(min(options.top_k, len(output)))
        return {
            "top": [
                {"class": c, "name": classes[c] if classes else None, "prob": p}
                for c, p in zip(top.tolist(), probs.tolist(), strict=True)
            ]
        }

    def tensor_outputs(self, model: Any) -> list[TensorSpec]:
        classes = int(model.num_classes)
        return [
            TensorSpec("logits", "FP32", (classes,)),
            TensorSpec("probabilities", "FP32", (classes,)),
            TensorSpec("top_classes", "INT64", (-1,), fill=-1),
            TensorSpec("top_probabilities", "FP32", (-1,)),
            TensorSpec("top_names", "BYTES", (-1,), fill=b""),
        ]

    def tensor_encode(
        self, output: torch.Tensor, prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        logits = output.float()
        probs = logits.softmax(0)
        top_p, top = probs.topk(min(options.top_k, len(probs)))
        names = [(classes[c] if classes else str(c)).encode("utf-8") for c in top.tolist()]
        return {
            "logits": logits.numpy(),
            "probabilities": probs.numpy(),
            "top_classes": top.numpy().astype(np.int64),
            "top_probabilities": top_p.numpy(),
            "top_names": np.array(names, dtype=object),
        }

    def describe(self, record: Mapping[str, Any]) -> str:
        return "   ".join(f"{t['name'] or t['class']} {100 * t['prob']:.1f}%" for t in record["top"])

    def settings(self) -> dict[str, Any]:
        return {"tta_flip": self.tta_flip, "tta_shift": self.tta_shift}

    def eval_dataset(
        self, card: Any, model: Any, data: str | None, data_dir: str | None, split: str, source: str = "the model"
    ) -> Any:
        return model_dataset(model, data, data_dir, split, source=source)

    def eval_loader(self, dataset: Any, batch_size: int, device: torch.device) -> Iterable[Batch]:
        return eval_loader(dataset, batch_size, device)

    def embedding_data(self, model: Any, data: str, split: str, data_dir: str | None) -> Any:
        """``data``'s split normalized with its own statistics (as fine-tuning on it would); images
        of another channel count are converted, as predict reads a file in the model's mode."""
        size = input_size(model)[0]
        ds = load_dataset(data, split, data_dir, image_size=size, mode="L" if model.in_chans == 1 else "RGB")
        if ds.in_chans != model.in_chans:
            if not isinstance(ds, InMemoryDataset) or model.in_chans not in (1, 3):
                raise ValueError(f"{data} images have {ds.in_chans} channels but the model takes {model.in_chans}")
            ds = ds.with_channels(model.in_chans)
        return ds

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        tta = "without TTA"
        views = ["flip"] if report.get("tta_flip") else []
        views += [f"±{report['tta_shift']} px shift"] if report.get("tta_shift") else []
        if views:
            tta = f"with {' and '.join(views)} TTA"
            if "plain_top1" in report:
                tta += f" (top-1 {100 * report['plain_top1']:.2f}% without)"
        lines = [
            f"top-1 {100 * report['top1']:.2f}%   top-5 {100 * report['top5']:.2f}%   loss {report['loss']:.4f}   {tta}"
        ]
        width = max(len(c) for c in report["per_class"])
        lines.append("per-class accuracy:")
        lines += [f"  {name:<{width}}  {100 * acc:6.2f}%" for name, acc in report["per_class"].items()]
        lines.append("confusion matrix (rows: true, columns: predicted):")
        lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in report["confusion"]]
        return lines

    def parity_inputs(self, network: Any, count: int) -> tuple[torch.Tensor, bool]:
        return parity_inputs(network, count)


def parity_inputs(model: Any, count: int = 256, seed: int = 0) -> tuple[torch.Tensor, bool]:
    """Up to ``count`` of the model's own test images, normalized as it was trained, and True; or
    random inputs of its input size, and False, when it records no dataset (a freshly built model)
    or is a backbone (pass its classifier to check a backbone on real images)."""
    from ..data import sample_subset

    if isinstance(model, ResNetBase):
        try:
            ds = sample_subset(model_dataset(model), count, seed)
            images = torch.cat([x for x, _ in eval_loader(ds, 256)])
            return images[:count].float(), True
        except (ValueError, DatasetError):
            pass  # no dataset on record: random inputs below
    first = model.feature_info[0] if isinstance(model, ResNetBase) else None
    side = 32 if first is not None and first["reduction"] == 1 else 64
    height, width = model_card(model).image_size or (side, side)
    chans = model.in_chans if isinstance(model, ResNetBase) else int((model.model_cfg or {}).get("in_chans", 3))
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(min(count, 8), chans, height, width, generator=gen), False
