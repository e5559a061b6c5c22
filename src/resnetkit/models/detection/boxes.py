"""Box arithmetic in pure PyTorch (boxes are ``(x1, y1, x2, y2)`` in pixels): areas, IoU and
generalized IoU, non-maximum suppression, and the two box codings torchvision's detectors use.
Nothing here needs a compiled extension, so it runs, exports and differentiates wherever PyTorch does."""

from __future__ import annotations

import math

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, box_area(a)[:, None] + box_area(b)[None, :] - inter


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[len(a), len(b)]`` intersection over union."""
    inter, union = _inter_union(a, b)
    return inter / union


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU (Rezatofighi et al. 2019, arXiv:1902.09630): IoU less the share of the
    smallest enclosing box that neither covers, so disjoint boxes still get a gradient."""
    inter, union = _inter_union(a, b)
    iou = inter / union
    lt = torch.min(a[:, None, :2], b[None, :, :2])
    rb = torch.max(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    hull = wh[..., 0] * wh[..., 1]
    return iou - (hull - union) / hull


def clip_boxes_to_image(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Boxes clipped to an image of ``size = (height, width)``."""
    height, width = size
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of the boxes whose sides are both at least ``min_size``."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((w >= min_size) & (h >= min_size))[0]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first. A box is
    dropped when its IoU with a higher-scoring kept box is above ``iou_threshold`` (torchvision's rule)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True)
    # One IoU matrix, then a walk down the ranking; each step is one vectorised row. Rows of
    # boxes already suppressed are skipped, so the walk costs O(kept * n).
    iou = box_iou(boxes[order], boxes[order])
    removed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        removed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each class of ``idxs``: boxes of different classes never suppress each other.
    Each class is moved to its own region of the plane (offset past every box), then one NMS runs."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


class BoxCoder:
    """R-CNN box deltas (Girshick et al. 2014, Appendix C), as RetinaNet regresses them: centre
    shifts in units of the anchor's size and log size ratios, scaled by ``weights``."""

    def __init__(self, weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)):
        self.weights = weights
        # Clamp log-size deltas so exp() cannot overflow (torchvision's log(1000/16)).
        self.clip = math.log(1000.0 / 16)

    def encode(self, boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        wx, wy, ww, wh = self.weights
        aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
        gw, gh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        gx, gy = boxes[:, 0] + 0.5 * gw, boxes[:, 1] + 0.5 * gh
        return torch.stack(
            (wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw), wh * torch.log(gh / ah)), dim=1
        )

    def decode(self, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        anchors = anchors.to(deltas.dtype)
        wx, wy, ww, wh = self.weights
        aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
        dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
        dw, dh = (deltas[:, 2] / ww).clamp(max=self.clip), (deltas[:, 3] / wh).clamp(max=self.clip)
        cx, cy, w, h = dx * aw + ax, dy * ah + ay, torch.exp(dw) * aw, torch.exp(dh) * ah
        return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=1)


class BoxLinearCoder:
    """FCOS's coding (Tian et al. 2019, Eq. 1): distances from the location (the anchor's centre)
    to the box's four sides, divided by the anchor's size so every level regresses similar numbers."""

    def __init__(self, normalize_by_size: bool = True):
        self.normalize_by_size = normalize_by_size

    def encode(self, boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        cx, cy = (anchors[..., 0] + anchors[..., 2]) / 2, (anchors[..., 1] + anchors[..., 3]) / 2
        targets = torch.stack((cx - boxes[..., 0], cy - boxes[..., 1], boxes[..., 2] - cx, boxes[..., 3] - cy), dim=-1)
        if self.normalize_by_size:
            w, h = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
            targets = targets / torch.stack((w, h, w, h), dim=-1)
        return targets

    def decode(self, codes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        anchors = anchors.to(codes.dtype)
        cx, cy = (anchors[..., 0] + anchors[..., 2]) / 2, (anchors[..., 1] + anchors[..., 3]) / 2
        if self.normalize_by_size:
            w, h = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
            codes = codes * torch.stack((w, h, w, h), dim=-1)
        return torch.stack((cx - codes[..., 0], cy - codes[..., 1], cx + codes[..., 2], cy + codes[..., 3]), dim=-1)
