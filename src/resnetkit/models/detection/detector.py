"""What RetinaNet and FCOS share: an FPN backbone, a head run on every level, anchors, the
transform, and the post-processing from raw head outputs to boxes. The two differ only in their
heads, their losses and how a location's score is formed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..stage import set_grad_checkpointing
from .anchors import AnchorGenerator
from .boxes import batched_nms, clip_boxes_to_image
from .fpn import BackboneWithFPN
from .transform import DetectionTransform, Target

Detections = list[dict[str, torch.Tensor]]


def flatten_level(x: torch.Tensor, per_anchor: int) -> torch.Tensor:
    """``[N, A * K, H, W]`` -> ``[N, H * W * A, K]``: location-major, anchor-minor, as the anchors."""
    n, _, h, w = x.shape
    return x.view(n, -1, per_anchor, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, per_anchor)


def check_targets(targets: list[Target] | None, n: int) -> list[Target]:
    if targets is None:
        raise ValueError("in training mode the detector needs targets: one {'boxes', 'labels'} dict per image")
    if len(targets) != n:
        raise ValueError(f"{len(targets)} targets for {n} images")
    for i, t in enumerate(targets):
        boxes = t.get("boxes")
        if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"target {i}: 'boxes' must be a float tensor of shape [K, 4] (x1, y1, x2, y2)")
        if "labels" not in t or len(t["labels"]) != len(boxes):
            raise ValueError(f"target {i}: 'labels' must hold one class index per box")
        bad = (boxes[:, 2:] <= boxes[:, :2]).any(dim=1)
        if bad.any():
            j = int(bad.nonzero()[0])
            raise ValueError(f"target {i}: box {j} {boxes[j].tolist()} has no area (needs x2 > x1 and y2 > y1)")
    return targets


class DenseDetector(nn.Module):
    """``model(images)`` in eval mode: ``[{"boxes", "scores", "labels"}]`` per image, boxes in the
    input's pixels; in train mode ``model(images, targets)``: the loss dict. ``images`` is a list
    of ``[C, H, W]`` tensors in [0, 1] (or one batched tensor); the model normalizes them itself."""

    head_names = ("head.classification_head.cls_logits",)
    first_conv = "backbone.body.conv1"
    body = "backbone.body"  # the classifier's trunk, as transfer learning freezes it
    box_coder: Any  # BoxCoder (RetinaNet) or BoxLinearCoder (FCOS): how regression outputs become boxes
    resolved_args: dict[str, Any]  # builder decisions that rebuild the model (set by ``detector``)

    def __init__(
        self,
        backbone: BackboneWithFPN,
        head: nn.Module,
        anchor_generator: AnchorGenerator,
        transform: DetectionTransform,
        num_classes: int,
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
        topk_candidates: int,
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.anchor_generator = anchor_generator
        self.transform = transform
        self.num_classes = num_classes
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img, self.topk_candidates = detections_per_img, topk_candidates

    @property
    def in_chans(self) -> int:
        return len(self.transform.image_mean)

    def set_grad_checkpointing(self, enable: bool = True, every: int | None = None, *, reentrant: bool = False) -> None:
        """Activation checkpointing in the backbone's stages, where the memory is."""
        set_grad_checkpointing(self.backbone, enable, every, reentrant=reentrant)

    def forward(
        self, images: Sequence[torch.Tensor] | torch.Tensor, targets: list[Target] | None = None
    ) -> dict[str, torch.Tensor] | Detections:
        if self.training:
            losses, _ = self.run(images, check_targets(targets, len(images)), detect=False)
            assert losses is not None
            return losses
        _, detections = self.run(images, None, detect=True)
        assert detections is not None
        return detections

    def run(
        self, images: Sequence[torch.Tensor] | torch.Tensor, targets: list[Target] | None, detect: bool
    ) -> tuple[dict[str, torch.Tensor] | None, Detections | None]:
        """One pass: the losses (when ``targets`` are given) and the detections (with ``detect``),
        so an evaluation measures both without running the network twice."""
        original = [(int(i.shape[-2]), int(i.shape[-1])) for i in images]
        batch, targets = self.transform(images, targets)
        features = list(self.backbone(batch.tensors).values())
        outputs = self.head(features)
        image_size = (int(batch.tensors.shape[-2]), int(batch.tensors.shape[-1]))
        anchors = self.anchor_generator(image_size, features)
        locations = [f.shape[-2] * f.shape[-1] for f in features]
        per_level = [n * a for n, a in zip(locations, self.anchor_generator.num_anchors_per_location(), strict=True)]
        losses = self.compute_loss(targets, outputs, anchors, per_level) if targets is not None else None
        detections = None
        if detect:
            detections = self.postprocess(outputs, anchors, per_level, batch.image_sizes)
            detections = self.transform.postprocess(detections, batch.image_sizes, original)
        return losses, detections

    def compute_loss(
        self, targets: list[Target], outputs: dict[str, torch.Tensor], anchors: torch.Tensor, per_level: list[int]
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def level_scores(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[N, anchors, classes]`` scores of the raw outputs."""
        raise NotImplementedError

    def decode(self, regression: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        return self.box_coder.decode(regression, anchors)

    @torch.no_grad()
    def postprocess(
        self,
        outputs: dict[str, torch.Tensor],
        anchors: torch.Tensor,
        per_level: list[int],
        sizes: list[tuple[int, int]],
    ) -> Detections:
        """Per level, the ``topk_candidates`` best (anchor, class) pairs above ``score_thresh``;
        then class-wise NMS over all levels and the ``detections_per_img`` best."""
        scores_all = self.level_scores(outputs).float()
        regression = outputs["bbox_regression"].float()
        k = scores_all.shape[-1]
        results = []
        for scores_img, reg_img, size in zip(scores_all, regression, sizes, strict=True):
            boxes_l, scores_l, labels_l = [], [], []
            for scores, reg, anc in zip(
                scores_img.split(per_level), reg_img.split(per_level), anchors.split(per_level), strict=True
            ):
                flat = scores.flatten()
                idx = torch.where(flat > self.score_thresh)[0]
                top, order = flat[idx].topk(min(self.topk_candidates, len(idx)))
                idx = idx[order]
                anchor_idx = idx // k
                boxes_l.append(clip_boxes_to_image(self.decode(reg[anchor_idx], anc[anchor_idx]), size))
                scores_l.append(top)
                labels_l.append(idx % k)
            boxes, scores, labels = torch.cat(boxes_l), torch.cat(scores_l), torch.cat(labels_l)
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
