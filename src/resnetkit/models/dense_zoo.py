"""Dense models by name: ``{fcn,deeplabv3}_{backbone}`` and ``{fcos,retinanet}_{backbone}_fpn``.
The ResNet-50/101 names are torchvision's, with its keys and defaults; the same heads come on
the other backbones below (the plain twins among them, for the degradation story on dense tasks)."""

from __future__ import annotations

from functools import partial

from .detection.builder import detector
from .registry import register_model
from .segmentation.model import segmenter

# Backbones the dense heads are registered on: ImageNet layouts (stride 32), the CIFAR layouts
# of the paper's §4.2 (stride 4: fine maps for small images), their plain twins, pre-activation.
BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet20",
    "resnet56",
    "plain18",
    "plain34",
    "plain20",
    "plain56",
    "preact_resnet18",
)

for _b in BACKBONES:
    for _head in ("fcn", "deeplabv3"):
        register_model(segmenter, name=f"{_head}_{_b}", task="segmentation")(partial(segmenter, _head, _b))
for _b in BACKBONES:
    for _kind in ("retinanet", "fcos"):
        register_model(detector, name=f"{_kind}_{_b}_fpn", task="detection")(partial(detector, _kind, _b))
