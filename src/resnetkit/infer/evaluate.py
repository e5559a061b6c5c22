"""``resnetkit eval``: accuracy of a trained model on a dataset, with nothing to remember but its path."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..artifacts import atomic_write_text, model_card
from ..runtime import resolve_device
from ..tasks import task_for
from .optimize import Classifier, fast_path, load_source, path_of


def evaluate_source(
    source: str | os.PathLike[str],
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    batch_size: int = 512,
    out: str | os.PathLike[str] | None = None,
    tta_flip: bool | None = None,
    precision: str = "auto",
    device: str = "auto",
    tta_shift: int | None = None,
) -> dict[str, Any]:
    """Top-1/top-5/per-class accuracy and confusion of ``source`` (tag, checkpoint, run folder,
    resnetkit safetensors, or an exported ``.onnx`` run in ONNX Runtime) on ``data`` (default: the
    dataset it was trained on), normalized with the statistics it was trained with. ``tta_flip``
    and ``tta_shift`` default to what its training did."""
    dev = resolve_device(device)
    return evaluate_model(
        load_source(source, device=dev),
        data=data,
        data_dir=data_dir,
        split=split,
        batch_size=batch_size,
        out=out,
        tta_flip=tta_flip,
        tta_shift=tta_shift,
        precision=precision,
        device=dev,
        source=str(source),
    )


def evaluate_model(
    model: Classifier,
    *,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    batch_size: int = 512,
    out: str | os.PathLike[str] | None = None,
    tta_flip: bool | None = None,
    tta_shift: int | None = None,
    precision: str = "auto",
    device: torch.device | str = "cpu",
    source: str = "model",
) -> dict[str, Any]:
    """``evaluate_source`` for a model already loaded (its record says its task and data). By
    default it is measured on its own test split: the run's held-out images, or the scenes drawn
    again from its seed. ``precision`` means what ``fast_path`` reads it as: a classifier runs the
    fast path unless it is ``fp32``, the reference, the model as it is. The report says which path
    ran, and with ``out`` it is written as ``eval.json`` beside a plot of its confusion matrix."""
    dev = torch.device(device)
    card = model_card(model)
    task = task_for(card).with_options(tta_flip=tta_flip, tta_shift=tta_shift)
    ds = task.eval_dataset(card, model, data, data_dir, split, source)
    runner = fast_path(model, precision, dev)
    result = task.evaluate(runner.to(dev), task.eval_loader(ds, batch_size, dev), dev)
    classes = list(ds.classes)
    data = data or card.data
    report: dict[str, Any] = {"source": source, "data": data, "split": split, "task": task.name, **task.settings()}
    report |= {"path": path_of(runner), **result.as_dict(classes)}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if "confusion" in report:
            from .plots import plot_confusion

            title = f"{Path(source).name} on {data}: {task.headline(report)}"
            report["confusion_png"] = str(plot_confusion(report["confusion"], classes, out / "confusion.png", title))
        atomic_write_text(out / "eval.json", json.dumps(report, indent=2) + "\n")
    return report
