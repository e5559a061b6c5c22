"""Semantic segmentation on resnetkit backbones: FCN and DeepLabV3, torchvision's layout."""

from .heads import ASPP, DeepLabHead, FCNHead
from .model import SegmentationModel, segmenter

__all__ = ["ASPP", "DeepLabHead", "FCNHead", "SegmentationModel", "segmenter"]
