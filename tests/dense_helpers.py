"""Small segmentation and detection models saved with their record, for serving and dispatch
tests: built, not trained (a detector's score biases are raised so that it finds boxes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resnetkit import create_model, export_weights

CLASSES = ["background", "T-shirt/top", "Trouser"]


def card(task: str) -> dict:
    return {
        "task": task,
        "name": "fashion-mnist-scenes",
        "classes": CLASSES,
        "in_chans": 1,
        "image_size": [64, 64],
        "mean": [0.1],
        "std": [0.25],
    }


def segmenter(folder: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("fcn_resnet20", num_classes=3, in_chans=1).eval()
    return export_weights(model, folder / "segmenter.safetensors", dataset=card("segmentation"))


def detector(folder: Path) -> Path:
    torch.manual_seed(0)
    options = {"fpn_channels": 16, "min_size": 64, "max_size": 64, "image_mean": [0.1], "image_std": [0.25]}
    model = create_model("fcos_resnet18_fpn", num_classes=3, in_chans=1, **options).eval()
    with torch.no_grad():  # every location confident: an untrained detector that answers boxes
        model.head.classification_head.cls_logits.bias.fill_(4.0)
        model.head.regression_head.bbox_ctrness.bias.fill_(4.0)
    return export_weights(model, folder / "detector.safetensors", dataset=card("detection"))


def scene(folder: Path, size: tuple[int, int] = (64, 96), name: str = "scene.png") -> Path:
    """A grey image of ``size`` (height, width) with two bright rectangles."""
    pixels = np.zeros(size, dtype=np.uint8)
    pixels[8:30, 10:40] = 220
    pixels[35:60, 50:90] = 180
    path = folder / name
    Image.fromarray(pixels).save(path)
    return path
