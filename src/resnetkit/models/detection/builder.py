"""A RetinaNet or FCOS on any registered classifier: its last three stages through an FPN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backbone import WeightsSource, backbone_classifier, freeze_backbone_layers
from ..features import FeatureDictNet
from .detector import DenseDetector
from .fcos import FCOSDetector, fcos_anchors
from .fpn import BackboneWithFPN
from .retinanet import RetinaNetDetector, retinanet_anchors
from .transform import DetectionTransform

DETECTORS = ("retinanet", "fcos")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def detector(
    kind: str,
    backbone_name: str,
    num_classes: int = 91,
    in_chans: int = 3,
    weights_backbone: WeightsSource = None,
    trainable_backbone_layers: int | None = None,
    norm_layer: str | None = None,
    fpn_channels: int = 256,
    min_size: int | Sequence[int] = 800,
    max_size: int = 1333,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    score_thresh: float | None = None,
    nms_thresh: float | None = None,
    detections_per_img: int | None = None,
    topk_candidates: int | None = None,
) -> DenseDetector:
    """torchvision's defaults: 91 COCO classes (index 0 unused, as in its label map), images resized
    to a shorter side of 800, frozen BatchNorm and only the last 3 backbone layers trained when
    ``weights_backbone`` is given (BatchNorm and everything trained otherwise). ``fpn_channels``
    narrows the FPN and heads for small data and small machines."""
    if kind not in DETECTORS:
        raise ValueError(f"detector {kind!r}: expected one of {', '.join(DETECTORS)}")
    classifier = backbone_classifier(backbone_name, in_chans=in_chans, weights=weights_backbone, norm_layer=norm_layer)
    last = len(classifier.feature_info) - 1
    levels = (last - 2, last - 1, last)
    if levels[0] < 1:
        raise ValueError(f"{backbone_name}: an FPN needs three stages, it has {last}")
    body = FeatureDictNet(classifier, levels, [str(i) for i in range(3)])
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 3 if weights_backbone is not None else len(classifier.stage_names) + 1
    freeze_backbone_layers(classifier, body, trainable_backbone_layers)
    backbone = BackboneWithFPN(body, fpn_channels)
    mean, std = _normalization(in_chans, image_mean, image_std)
    transform = DetectionTransform(min_size, max_size, mean, std)
    options = {
        "score_thresh": score_thresh,
        "nms_thresh": nms_thresh,
        "detections_per_img": detections_per_img,
        "topk_candidates": topk_candidates,
    }
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    strides = backbone.strides
    model: DenseDetector
    if kind == "retinanet":
        # RetinaNet's anchors are 4 strides wide at every level (32 px at stride 8, §4).
        anchors = retinanet_anchors(tuple(4 * s for s in strides))
        model = RetinaNetDetector(backbone, num_classes, transform, anchors, **given)
    else:
        model = FCOSDetector(backbone, num_classes, transform, fcos_anchors(len(strides), strides[0]), **given)
    norm = norm_layer or ("batchnorm" if weights_backbone is None else "frozen_batchnorm")
    model.resolved_args = {"norm_layer": norm, "trainable_backbone_layers": trainable_backbone_layers}
    return model


def _normalization(
    in_chans: int, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[list[float], list[float]]:
    def fit(values: Sequence[float] | None, default: Sequence[float], what: str) -> list[float]:
        if values is None:
            avg = sum(default) / len(default)
            return list(default) if in_chans == 3 else [avg] * in_chans
        if len(values) != in_chans:
            raise ValueError(f"{what} has {len(values)} values for {in_chans} input channels")
        return [float(v) for v in values]

    return fit(mean, IMAGENET_MEAN, "image_mean"), fit(std, IMAGENET_STD, "image_std")
