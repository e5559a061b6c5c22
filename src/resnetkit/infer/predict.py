"""Predictions of a trained model for image files, whatever its task: each file read and prepared
as the model's record says, predicted in batches, encoded by the task (top-k classes, a mask's
class shares, boxes), and where the task draws one, a picture of it written as a PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..artifacts import atomic_write, model_card
from ..tasks import PredictOptions, task_of
from .optimize import Classifier


@dataclass(frozen=True)
class Prediction:
    image: str
    classes: list[int]  # most probable first
    names: list[str] | None  # the classes' names, when the model records them
    probs: list[float]

    def as_dict(self) -> dict:
        return {
            "image": self.image,
            "top": [
                {"class": c, "name": self.names[i] if self.names else None, "prob": p}
                for i, (c, p) in enumerate(zip(self.classes, self.probs, strict=True))
            ],
        }


@torch.inference_mode()
def predict_files(
    model: Any,
    paths: Sequence[str | os.PathLike[str]],
    options: PredictOptions | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """One JSON-able record per file (``{"image": path, ...}`` and what the model's task encodes).
    With ``out_dir``, each prediction the task can draw (a mask, boxes) is written over its image
    as ``out_dir/<stem>.png``, named in the record as ``picture``."""
    if not paths:
        raise ValueError("no images given")
    options = options or PredictOptions()
    task = task_of(model)
    classes = list(model_card(model).classes or []) or None
    records = []
    for start in range(0, len(paths), batch_size):
        chunk = [str(p) for p in paths[start : start + batch_size]]
        prepared = [item for p in chunk for item in task.read(p, model)]
        outputs = task.predict_batch(model, [p.input for p in prepared], options)
        for item, output in zip(prepared, outputs, strict=True):
            record: dict[str, Any] = {"image": item.name}
            picture = task.draw(output, item, classes, options) if out_dir is not None else None
            if picture is not None:
                target = Path(out_dir or ".") / f"{Path(item.name).stem}.png"
                _save_png(picture, target)
                record["picture"] = str(target)
            records.append(record | task.encode(output, item, classes, options))
    return records


def _save_png(picture: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def predict(
    model: Classifier,
    paths: Sequence[str | os.PathLike[str]],
    top_k: int = 5,
    tta_flip: bool | None = None,
    batch_size: int = 64,
    tta_shift: int | None = None,
) -> list[Prediction]:
    """The ``top_k`` classes of each image for a classifier (in eval mode), read and normalized as
    it was trained. ``tta_flip`` averages the logits of the image and its mirror, ``tta_shift``
    those of each moved that many pixels left and right; by default they do what the model's
    training evaluation did."""
    options = PredictOptions(top_k=top_k, tta_flip=tta_flip, tta_shift=tta_shift)
    out = []
    for r in predict_files(model, paths, options, batch_size=batch_size):
        top = r["top"]
        names = [t["name"] for t in top] if top and top[0]["name"] is not None else None
        out.append(Prediction(r["image"], [t["class"] for t in top], names, [t["prob"] for t in top]))
    return out
