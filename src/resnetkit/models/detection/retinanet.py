"""RetinaNet (Lin et al. 2017, arXiv:1708.02002): anchors at every FPN location, a classification
and a box subnet of four 3x3 convs each, focal loss so the ~100k easy background anchors do not
drown the few objects. Keys and defaults are torchvision's ``retinanet_resnet50_fpn``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .anchors import AnchorGenerator
from .boxes import BoxCoder, box_iou
from .detector import DenseDetector, flatten_level
from .fpn import BackboneWithFPN
from .losses import sigmoid_focal_loss
from .transform import DetectionTransform, Target

BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS = -1, -2
PRIOR_PROBABILITY = 0.01  # §4.1 "Initialization": every anchor starts as background with p = 0.01


def match_anchors(
    iou: torch.Tensor, high: float = 0.5, low: float = 0.4, allow_low_quality_matches: bool = True
) -> torch.Tensor:
    """For each anchor (column of ``iou``, ``[gt, anchors]``): the index of its best box when the
    IoU is at least ``high``, -1 (background) below ``low``, -2 (ignored) in between (§4). With
    ``allow_low_quality_matches`` each box also keeps the anchors it overlaps best, so no box goes
    unmatched for want of a well-placed anchor (Faster R-CNN's rule, Ren et al. 2015)."""
    if iou.shape[0] == 0:
        return torch.full((iou.shape[1],), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=iou.device)
    values, matches = iou.max(dim=0)
    best = matches.clone()
    matches[values < low] = BELOW_LOW_THRESHOLD
    matches[(values >= low) & (values < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality_matches:
        best_per_gt = iou.max(dim=1).values
        anchors = torch.where(iou == best_per_gt[:, None])[1]
        matches[anchors] = best[anchors]
    return matches


def _tower(channels: int) -> nn.Sequential:
    # Four 3x3 conv + ReLU, each a Sequential(conv, relu): torchvision's conv.{i}.0 keys.
    return nn.Sequential(
        *(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)) for _ in range(4))
    )


class RetinaNetClassificationHead(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int, num_classes: int):
        super().__init__()
        self.conv = _tower(in_channels)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]
        prior_bias = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
        nn.init.constant_(self.cls_logits.bias, prior_bias)  # type: ignore[arg-type]
        self.num_classes = num_classes

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([flatten_level(self.cls_logits(self.conv(f)), self.num_classes) for f in features], dim=1)


class RetinaNetRegressionHead(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__()
        self.conv = _tower(in_channels)
        self.bbox_reg = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([flatten_level(self.bbox_reg(self.conv(f)), 4) for f in features], dim=1)


class RetinaNetHead(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int, num_classes: int):
        super().__init__()
        self.classification_head = RetinaNetClassificationHead(in_channels, num_anchors, num_classes)
        self.regression_head = RetinaNetRegressionHead(in_channels, num_anchors)

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"cls_logits": self.classification_head(features), "bbox_regression": self.regression_head(features)}


def retinanet_anchors(base_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)) -> AnchorGenerator:
    """Three scales (2^0, 2^1/3, 2^2/3) and three ratios per level (§4, "Anchors"), as torchvision rounds them."""
    sizes = [(x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))) for x in base_sizes]
    return AnchorGenerator(sizes, [(0.5, 1.0, 2.0)] * len(sizes))


class RetinaNetDetector(DenseDetector):
    def __init__(
        self,
        backbone: BackboneWithFPN,
        num_classes: int,
        transform: DetectionTransform,
        anchor_generator: AnchorGenerator | None = None,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 300,
        topk_candidates: int = 1000,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.4,
    ):
        anchor_generator = anchor_generator or retinanet_anchors()
        num_anchors = anchor_generator.num_anchors_per_location()[0]
        head = RetinaNetHead(backbone.out_channels, num_anchors, num_classes)
        super().__init__(
            backbone,
            head,
            anchor_generator,
            transform,
            num_classes,
            score_thresh,
            nms_thresh,
            detections_per_img,
            topk_candidates,
        )
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, bg_iou_thresh

    def level_scores(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(outputs["cls_logits"])

    def compute_loss(
        self, targets: list[Target], outputs: dict[str, torch.Tensor], anchors: torch.Tensor, per_level: list[int]
    ) -> dict[str, torch.Tensor]:
        """Focal loss over anchors not ignored, L1 on the box deltas of foreground anchors; each
        divided by the image's foreground count (§4), then averaged over the images."""
        cls_losses, box_losses = [], []
        for target, logits, regression in zip(targets, outputs["cls_logits"], outputs["bbox_regression"], strict=True):
            boxes, labels = target["boxes"].to(anchors), target["labels"]
            matches = match_anchors(box_iou(boxes, anchors), self.fg_iou_thresh, self.bg_iou_thresh)
            fg = matches >= 0
            num_fg = max(1, int(fg.sum()))
            gt_classes = torch.zeros_like(logits)
            gt_classes[fg, labels[matches[fg]]] = 1.0
            valid = matches != BETWEEN_THRESHOLDS
            cls_losses.append(sigmoid_focal_loss(logits[valid].float(), gt_classes[valid]) / num_fg)
            deltas = self.box_coder.encode(boxes[matches[fg]], anchors[fg])
            box_losses.append(F.l1_loss(regression[fg].float(), deltas, reduction="sum") / num_fg)
        return {
            "classification": torch.stack(cls_losses).mean(),
            "bbox_regression": torch.stack(box_losses).mean(),
        }
