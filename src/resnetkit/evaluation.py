"""``resnetkit eval``: accuracy of a trained model on a dataset, with nothing to remember but its path."""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import torch
from torch import nn

from .data import InMemoryDataset, InMemoryLoader, load_dataset, make_streaming_loader
from .loading import load_model
from .train.evaluate import evaluate
from .train.plots import plot_confusion
from .train.precision import Precision, resolve_device


def model_dataset(model: nn.Module, data: str | None = None, data_dir: str | None = None, split: str = "test",
                  source: str = "the model"):
    """The dataset to measure ``model`` on: ``data``, or by default the one it was trained on
    (``model.pretrained_cfg``), checked against its classes and channels and normalized with the
    statistics it was trained with."""
    trained_on = getattr(model, "pretrained_cfg", None) or {}
    data = data or trained_on.get("name")
    if not data:
        raise ValueError(f"{source}: the model does not say what it was trained on; pass --data")
    size = trained_on.get("image_size", [224])[0]
    ds = load_dataset(data, split, data_dir, image_size=size)
    if len(ds.classes) != model.num_classes:
        raise ValueError(f"{data} has {len(ds.classes)} classes but {source} predicts {model.num_classes}")
    if ds.in_chans != trained_on.get("in_chans", ds.in_chans):
        raise ValueError(f"{data} images have {ds.in_chans} channels but {source} was trained on {trained_on['in_chans']}")
    if trained_on.get("mean"):
        ds = _with_stats(ds, trained_on["mean"], trained_on["std"])
    return ds


def trained_tta_flip(model: nn.Module) -> bool:
    """Whether the model's own training evaluated it with flip TTA (the recipe's protocol, which
    ``resnetkit eval`` repeats unless told otherwise)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return bool(cfg.get("training", {}).get("config", {}).get("tta_flip", False))


def sample_subset(ds, n: int, seed: int = 0):
    """``n`` samples drawn without replacement (seeded: the same ones every call), keeping classes
    and normalization; the whole dataset when it has no more than ``n``."""
    if n >= len(ds):
        return ds
    pick = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    if isinstance(ds, InMemoryDataset):
        return ds.subset(pick)
    sub = copy.copy(ds)  # an image folder: the same reader over fewer files
    sub.samples = [ds.samples[i] for i in pick.tolist()]
    sub.targets = [label for _, label in sub.samples]
    return sub


def eval_loader(ds, batch_size: int, device: torch.device | str = "cpu"):
    """Batches of (normalized images, labels) in order, without augmentation."""
    if isinstance(ds, InMemoryDataset):
        return InMemoryLoader(ds, batch_size, shuffle=False, device=device)
    return make_streaming_loader(ds, batch_size, num_workers=2)


def evaluate_source(source: str | os.PathLike, data: str | None = None, data_dir: str | None = None,
                    split: str = "test", batch_size: int = 512, out: str | os.PathLike | None = None,
                    tta_flip: bool | None = None, precision: str = "auto", device: str = "auto") -> dict:
    """Top-1/top-5/per-class accuracy and confusion of ``source`` (tag, checkpoint, run folder or
    resnetkit safetensors) on ``data`` (default: the dataset it was trained on), normalized with
    the statistics it was trained with. ``tta_flip`` defaults to what its training did."""
    dev = resolve_device(device)
    return evaluate_model(load_model(source, device=dev), data, data_dir, split, batch_size, out, tta_flip, precision,
                          dev, str(source))


def evaluate_model(model: nn.Module, data: str | None = None, data_dir: str | None = None, split: str = "test",
                   batch_size: int = 512, out: str | os.PathLike | None = None, tta_flip: bool | None = None,
                   precision: str = "auto", device: torch.device | str = "cpu", source: str = "model") -> dict:
    """``evaluate_source`` for a model already loaded (with ``pretrained_cfg`` saying its data)."""
    dev = torch.device(device)
    ds = model_dataset(model, data, data_dir, split, source=source)
    data = data or model.pretrained_cfg["name"]
    prec = Precision(precision, dev)
    tta_flip = trained_tta_flip(model) if tta_flip is None else tta_flip
    result = evaluate(model, eval_loader(ds, batch_size, dev), model.num_classes, prec.autocast, tta_flip, dev)
    report = {"source": source, "data": data, "split": split, "tta_flip": tta_flip, **result.as_dict(list(ds.classes))}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report["confusion_png"] = str(plot_confusion(result.confusion, list(ds.classes), out / "confusion.png",
                                                     f"{Path(source).name} on {data}: top-1 {100 * result.top1:.2f}%"))
        (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _with_stats(ds, mean, std):
    if isinstance(ds, InMemoryDataset):
        return dataclasses.replace(ds, mean=tuple(mean), std=tuple(std))
    ds.mean, ds.std = tuple(mean), tuple(std)
    return ds


__all__ = ["eval_loader", "evaluate_model", "evaluate_source", "model_dataset", "sample_subset", "trained_tta_flip"]
