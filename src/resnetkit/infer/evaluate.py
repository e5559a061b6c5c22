"""``resnetkit eval``: accuracy of a trained model on a dataset, with nothing to remember but its path."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..artifacts import atomic_write_text, model_dataset, trained_tta_flip
from ..data import eval_loader
from ..tasks import evaluate
from ..train.precision import resolve_device
from .dense import dense_task, evaluate_dense
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
) -> dict[str, Any]:
    """Top-1/top-5/per-class accuracy and confusion of ``source`` (tag, checkpoint, run folder,
    resnetkit safetensors, or an exported ``.onnx`` run in ONNX Runtime) on ``data`` (default: the
    dataset it was trained on), normalized with the statistics it was trained with. ``tta_flip``
    defaults to what its training did."""
    dev = resolve_device(device)
    return evaluate_model(
        load_source(source, device=dev),
        data=data,
        data_dir=data_dir,
        split=split,
        batch_size=batch_size,
        out=out,
        tta_flip=tta_flip,
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
    precision: str = "auto",
    device: torch.device | str = "cpu",
    source: str = "model",
) -> dict[str, Any]:
    """``evaluate_source`` for a model already loaded (with ``pretrained_cfg`` saying its data).
    A PyTorch model runs the fast path (``optimize_for_inference``) unless ``precision="fp32"``,
    which is the reference: the model as it is, in fp32. The report says which path ran."""
    dev = torch.device(device)
    if dense_task(model) is not None:
        if data is not None:
            raise ValueError("--data: a segmentation or detection model is evaluated on the scenes it was trained on")
        report = evaluate_dense(model, split, data_dir, min(batch_size, 64), dev, source)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(out) / "eval.json", json.dumps(report, indent=2) + "\n")
        return report
    ds = model_dataset(model, data, data_dir, split, source=source)
    data = data or model.pretrained_cfg["name"]
    runner = fast_path(model, precision, dev) if precision != "fp32" else model
    tta_flip = trained_tta_flip(model) if tta_flip is None else tta_flip
    result = evaluate(runner, eval_loader(ds, batch_size, dev), model.num_classes, None, tta_flip, dev)
    classes = list(ds.classes)
    report = {
        "source": source,
        "data": data,
        "split": split,
        "tta_flip": tta_flip,
        "path": path_of(runner),
        **result.as_dict(classes),
    }
    if out is not None:
        from .plots import plot_confusion

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        title = f"{Path(source).name} on {data}: top-1 {100 * result.top1:.2f}%"
        report["confusion_png"] = str(plot_confusion(report["confusion"], classes, out / "confusion.png", title))
        atomic_write_text(out / "eval.json", json.dumps(report, indent=2) + "\n")
    return report
