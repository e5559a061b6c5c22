"""Dense object detectors on resnetkit backbones: RetinaNet and FCOS over an FPN, in pure PyTorch."""

from .anchors import AnchorGenerator
from .boxes import BoxCoder, BoxLinearCoder, batched_nms, box_area, box_iou, generalized_box_iou, nms
from .builder import detector
from .detector import DenseDetector
from .fcos import FCOSDetector, assign_targets
from .fpn import BackboneWithFPN, FeaturePyramidNetwork
from .losses import giou_loss, sigmoid_focal_loss
from .retinanet import RetinaNetDetector, match_anchors
from .transform import DetectionTransform

__all__ = [
    "AnchorGenerator",
    "BackboneWithFPN",
    "BoxCoder",
    "BoxLinearCoder",
    "DenseDetector",
    "DetectionTransform",
    "FCOSDetector",
    "FeaturePyramidNetwork",
    "RetinaNetDetector",
    "assign_targets",
    "batched_nms",
    "box_area",
    "box_iou",
    "detector",
    "generalized_box_iou",
    "giou_loss",
    "match_anchors",
    "nms",
    "sigmoid_focal_loss",
]
