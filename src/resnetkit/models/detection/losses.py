"""The detection losses: focal loss for the classifier, L1 and GIoU for the boxes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Summed focal loss (Lin et al. 2017, arXiv:1708.02002, Eq. 5): cross-entropy scaled by
    ``(1 - p_t)^gamma`` so the many easy background anchors stop dominating the sum."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum()


def giou_loss(boxes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed ``1 - GIoU`` of matched pairs (row ``i`` of each; Rezatofighi et al. 2019)."""
    lt, rb = torch.max(boxes[:, :2], targets[:, :2]), torch.min(boxes[:, 2:], targets[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(dim=1) + (targets[:, 2:] - targets[:, :2]).prod(dim=1)
    union = area - inter
    hull = (torch.max(boxes[:, 2:], targets[:, 2:]) - torch.min(boxes[:, :2], targets[:, :2])).prod(dim=1)
    eps = 1e-7  # torchvision's: a degenerate pair gives a finite loss, not NaN
    giou = inter / (union + eps) - (hull - union) / (hull + eps)
    return (1 - giou).sum()
