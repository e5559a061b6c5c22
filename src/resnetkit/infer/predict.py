"""Top-k predictions of a trained model for image files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..artifacts import trained_tta_flip
from ..tasks import model_logits
from .optimize import Classifier
from .preprocess import load_images


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
def predict(
    model: Classifier,
    paths: Sequence[str | os.PathLike[str]],
    top_k: int = 5,
    tta_flip: bool | None = None,
    batch_size: int = 64,
) -> list[Prediction]:
    """The ``top_k`` classes of each image for ``model`` (in eval mode), read and normalized as it
    was trained. ``tta_flip`` averages the logits of the image and its mirror; by default it does
    what the model's training evaluation did."""
    tta = trained_tta_flip(model) if tta_flip is None else tta_flip
    names = (getattr(model, "pretrained_cfg", None) or {}).get("classes")
    k = min(top_k, model.num_classes)
    out = []
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start : start + batch_size])
        probs, classes = model_logits(model, load_images(chunk, model), tta).float().softmax(1).topk(k, dim=1)
        for path, c, p in zip(chunk, classes.tolist(), probs.tolist(), strict=True):
            out.append(Prediction(str(path), c, [names[i] for i in c] if names else None, p))
    return out
