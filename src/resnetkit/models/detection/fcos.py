"""FCOS (Tian et al. 2019, arXiv:1904.01355): one location per FPN cell instead of a set of
anchors; each location inside a box (near its centre) regresses the distances to the box's four
sides, and a centre-ness branch damps the low-quality boxes of off-centre locations. Keys and
defaults are torchvision's ``fcos_resnet50_fpn``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GroupNorm
from .anchors import AnchorGenerator
from .boxes import BoxLinearCoder
from .detector import DenseDetector, flatten_level
from .fpn import BackboneWithFPN
from .losses import giou_loss, sigmoid_focal_loss
from .transform import DetectionTransform, Target

PRIOR_PROBABILITY = 0.01


def _tower(channels: int, num_convs: int) -> nn.Sequential:
    # conv, GroupNorm(32), ReLU, flat: torchvision's conv.{0,1,3,4,...} keys. GroupNorm, not
    # BatchNorm: one head runs on every level, whose statistics differ (FCOS adds GN to its heads).
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        # 32 groups as torchvision; narrower towers keep two channels a group, so a 1x1 P7 of
        # one image still has more than one value to normalize.
        groups = min(32, max(channels // 2, 1))
        layers += [nn.Conv2d(channels, channels, 3, padding=1), GroupNorm(channels, groups), nn.ReLU()]
    return nn.Sequential(*layers)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)  # type: ignore[arg-type]


class FCOSClassificationHead(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, num_convs: int = 4):
        super().__init__()
        self.conv = _tower(in_channels, num_convs)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        _init(self)
        prior_bias = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
        nn.init.constant_(self.cls_logits.bias, prior_bias)  # type: ignore[arg-type]
        self.num_classes = num_classes

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([flatten_level(self.cls_logits(self.conv(f)), self.num_classes) for f in features], dim=1)


class FCOSRegressionHead(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int, num_convs: int = 4):
        super().__init__()
        self.conv = _tower(in_channels, num_convs)
        self.bbox_reg = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        self.bbox_ctrness = nn.Conv2d(in_channels, num_anchors, 3, padding=1)
        _init(self)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        reg, ctr = [], []
        for f in features:
            t = self.conv(f)
            reg.append(flatten_level(F.relu(self.bbox_reg(t)), 4))  # distances are never negative
            ctr.append(flatten_level(self.bbox_ctrness(t), 1))
        return torch.cat(reg, dim=1), torch.cat(ctr, dim=1)


class FCOSHead(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, num_convs: int = 4):
        super().__init__()
        self.classification_head = FCOSClassificationHead(in_channels, num_anchors, num_classes, num_convs)
        self.regression_head = FCOSRegressionHead(in_channels, num_anchors, num_convs)

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        reg, ctr = self.regression_head(features)
        return {"cls_logits": self.classification_head(features), "bbox_regression": reg, "bbox_ctrness": ctr}


def fcos_anchors(num_levels: int = 5, base: int = 8) -> AnchorGenerator:
    # One square "anchor" per location whose side is the level's stride: only its centre and size
    # are used (the size sets the level's regression range below).
    return AnchorGenerator([(base * 2**i,) for i in range(num_levels)], [(1.0,)] * num_levels)


def assign_targets(
    anchors: torch.Tensor, per_level: list[int], boxes: torch.Tensor, center_sampling_radius: float = 1.5
) -> torch.Tensor:
    """The box each location learns (index into ``boxes``; -1: background). A location is positive
    for a box when it lies inside the box and within ``radius`` strides of its centre ("centre
    sampling"), and the box's largest side distance falls in the level's range [4s, 8s] (the
    first level from 0, the last to infinity: §3.2 with ranges tied to the level's size s);
    among several boxes, the smallest wins (§3.2, "ambiguous samples")."""
    if boxes.numel() == 0:
        return torch.full((len(anchors),), -1, dtype=torch.int64, device=anchors.device)
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2  # [A, 2]
    sizes = anchors[:, 2] - anchors[:, 0]  # [A]
    gt_centers = (boxes[:, :2] + boxes[:, 2:]) / 2  # [G, 2]
    near = (centers[None] - gt_centers[:, None]).abs().max(dim=2).values < center_sampling_radius * sizes[None]
    x, y = centers[:, 0][None], centers[:, 1][None]
    x1, y1, x2, y2 = (boxes[:, i][:, None] for i in range(4))
    sides = torch.stack([x - x1, y - y1, x2 - x, y2 - y], dim=2)  # [G, A, 4]
    inside = sides.min(dim=2).values > 0
    reach = sides.max(dim=2).values
    lower, upper = sizes * 4, sizes * 8
    lower[: per_level[0]] = 0
    upper[-per_level[-1] :] = float("inf")
    match = near & inside & (reach > lower[None]) & (reach < upper[None])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    weighted = match.float() * (1e8 - areas[:, None])
    best, idx = weighted.max(dim=0)
    idx[best < 1e-5] = -1
    return idx


class FCOSDetector(DenseDetector):
    def __init__(
        self,
        backbone: BackboneWithFPN,
        num_classes: int,
        transform: DetectionTransform,
        anchor_generator: AnchorGenerator | None = None,
        center_sampling_radius: float = 1.5,
        score_thresh: float = 0.2,
        nms_thresh: float = 0.6,
        detections_per_img: int = 100,
        topk_candidates: int = 1000,
        num_convs: int = 4,
    ):
        anchor_generator = anchor_generator or fcos_anchors()
        head = FCOSHead(backbone.out_channels, 1, num_classes, num_convs)
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
        self.box_coder = BoxLinearCoder(normalize_by_size=True)
        self.center_sampling_radius = center_sampling_radius

    def level_scores(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # §3.3: the centre-ness multiplies the class score, so NMS prefers well-centred boxes.
        return torch.sqrt(torch.sigmoid(outputs["cls_logits"]) * torch.sigmoid(outputs["bbox_ctrness"]))

    def compute_loss(
        self, targets: list[Target], outputs: dict[str, torch.Tensor], anchors: torch.Tensor, per_level: list[int]
    ) -> dict[str, torch.Tensor]:
        """Focal loss over all locations, GIoU on the boxes and BCE on the centre-ness of the
        positive ones, each divided by the batch's number of positives."""
        matched, gt_classes, gt_boxes = [], [], []
        for target in targets:
            boxes, labels = target["boxes"].to(anchors), target["labels"]
            idx = assign_targets(anchors, per_level, boxes, self.center_sampling_radius)
            matched.append(idx)
            if len(boxes):
                gt_boxes.append(boxes[idx.clamp(min=0)])
                gt_classes.append(labels[idx.clamp(min=0)])
            else:
                gt_boxes.append(anchors.new_zeros(len(anchors), 4))
                gt_classes.append(idx.new_zeros(len(anchors)))
        fg = torch.stack(matched) >= 0
        classes, boxes_t = torch.stack(gt_classes), torch.stack(gt_boxes)
        num_fg = max(1, int(fg.sum()))
        logits = outputs["cls_logits"].float()
        cls_target = torch.zeros_like(logits)
        cls_target[fg, classes[fg]] = 1.0
        batch_anchors = anchors[None].expand_as(boxes_t)
        pred_boxes = self.box_coder.decode(outputs["bbox_regression"].float(), batch_anchors)
        codes = self.box_coder.encode(boxes_t[fg], batch_anchors[fg])
        lr, tb = codes[:, [0, 2]], codes[:, [1, 3]]
        ctrness = torch.sqrt(
            (lr.min(dim=1).values / lr.max(dim=1).values) * (tb.min(dim=1).values / tb.max(dim=1).values)
        )
        pred_ctr = outputs["bbox_ctrness"].float().squeeze(2)[fg]
        return {
            "classification": sigmoid_focal_loss(logits, cls_target) / num_fg,
            "bbox_regression": giou_loss(pred_boxes[fg], boxes_t[fg]) / num_fg,
            "bbox_ctrness": F.binary_cross_entropy_with_logits(pred_ctr, ctrness, reduction="sum") / num_fg,
        }
