"""Semantic segmentation on a ResNet backbone: FCN and DeepLabV3, as torchvision builds them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone import WeightsSource, backbone_classifier
from ..features import FeatureDictNet
from ..stage import set_grad_checkpointing
from ..whitening import PatchWhitening
from .heads import DeepLabHead, FCNHead

HEADS = ("fcn", "deeplabv3")


class SegmentationModel(nn.Module):
    """``backbone`` returns ``{"aux": stage N-1, "out": stage N}``; the forward returns
    ``{"out": logits}`` (and ``"aux"`` with an auxiliary head), each upsampled (bilinear) to the
    input's size, as torchvision's ``_SimpleSegmentationModel``. Dict in train and eval mode alike."""

    first_conv = "backbone.conv1"
    body = "backbone"  # the classifier's trunk, as transfer learning freezes it
    head_names = ("classifier.4", "aux_classifier.4")

    def __init__(self, backbone: FeatureDictNet, classifier: nn.Module, aux_classifier: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier
        self.aux_classifier = aux_classifier
        last = list(classifier.modules())[-1]
        assert isinstance(last, nn.Conv2d)
        self.num_classes = last.out_channels

    @property
    def in_chans(self) -> int:
        conv = self.get_submodule(self.first_conv)
        assert isinstance(conv, (nn.Conv2d, PatchWhitening))
        return conv.in_channels

    def set_grad_checkpointing(self, enable: bool = True, every: int | None = None, *, reentrant: bool = False) -> None:
        """Activation checkpointing in the backbone's stages, where the memory is."""
        set_grad_checkpointing(self.backbone, enable, every, reentrant=reentrant)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.backbone(x)
        result: OrderedDict[str, torch.Tensor] = OrderedDict()
        out = self.classifier(features["out"])
        result["out"] = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        if self.aux_classifier is not None:
            aux = self.aux_classifier(features["aux"])
            result["aux"] = F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return result


def segmenter(
    head: str,
    backbone_name: str,
    num_classes: int = 21,
    in_chans: int = 3,
    aux_loss: bool = True,
    weights_backbone: WeightsSource = None,
    output_stride: int = 8,
    head_channels: int | None = None,
    atrous_rates: Sequence[int] = (12, 24, 36),
    norm_layer: str = "batchnorm",
) -> SegmentationModel:
    """``head`` on classifier ``backbone_name``, its last stages dilated to ``output_stride`` (8:
    torchvision's layer3 and layer4 with dilation 2 and 4). The auxiliary FCN head on the
    next-to-last stage (torchvision's ``aux_loss=True``, on by default here because its published
    checkpoints carry it) adds a loss deeper in the net during training; drop it at inference."""
    if head not in HEADS:
        raise ValueError(f"segmentation head {head!r}: expected one of {', '.join(HEADS)}")
    classifier = backbone_classifier(
        backbone_name, in_chans=in_chans, weights=weights_backbone, norm_layer=norm_layer, output_stride=output_stride
    )
    last = len(classifier.feature_info) - 1
    body = FeatureDictNet(classifier, (last - 1, last), ("aux", "out"))
    aux_chs, out_chs = body.feature_info.channels()
    if head == "fcn":
        main: nn.Module = FCNHead(out_chs, num_classes, head_channels)
    else:
        main = DeepLabHead(out_chs, num_classes, head_channels, atrous_rates)
    aux = FCNHead(aux_chs, num_classes) if aux_loss else None
    return SegmentationModel(body, main, aux)
