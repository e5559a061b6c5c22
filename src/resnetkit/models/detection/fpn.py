"""Feature Pyramid Network (Lin et al. 2017, arXiv:1612.03144) over a ResNet's last stages, with
RetinaNet's extra P6/P7 levels; module names follow torchvision's ``BackboneWithFPN`` so its
checkpoints load."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..features import FeatureDictNet


class LastLevelP6P7(nn.Module):
    """P6 = 3x3/2 conv of P5 (of C5 when the channel counts differ), P7 = 3x3/2 conv of ReLU(P6)
    (RetinaNet, Lin et al. 2017, arXiv:1708.02002, §4): coarse levels for large objects."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)
        for conv in (self.p6, self.p7):
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        self.use_p5 = in_channels == out_channels

    def forward(self, results: list[torch.Tensor], inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        p6 = self.p6(results[-1] if self.use_p5 else inputs[-1])
        return [p6, self.p7(F.relu(p6))]


class FeaturePyramidNetwork(nn.Module):
    """Lateral 1x1 convs bring every level to ``out_channels``; a top-down pass adds each coarser
    level, upsampled (nearest), to the next finer one; a 3x3 conv smooths each sum (§3)."""

    def __init__(self, in_channels_list: list[int], out_channels: int, extra_blocks: LastLevelP6P7 | None = None):
        super().__init__()
        # Sequential(conv) as torchvision's Conv2dNormActivation without norm: keys inner_blocks.i.0.
        self.inner_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c, out_channels, 1)) for c in in_channels_list)
        self.layer_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1)) for _ in in_channels_list
        )
        for m in [*self.inner_blocks.modules(), *self.layer_blocks.modules()]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]
        self.extra_blocks = extra_blocks

    def forward(self, x: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        names, feats = list(x.keys()), list(x.values())
        last = self.inner_blocks[-1](feats[-1])
        results = [self.layer_blocks[-1](last)]
        for idx in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[idx](feats[idx])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[idx](last))
        if self.extra_blocks is not None:
            results.extend(self.extra_blocks(results, feats))
            names.extend(["p6", "p7"])
        return OrderedDict(zip(names, results, strict=True))


class BackboneWithFPN(nn.Module):
    """``body`` (the ResNet trunk, returning its last stages as ``'0'``, ``'1'``, ...) then the FPN.
    ``out_channels`` is what every level has, for the heads."""

    def __init__(self, body: FeatureDictNet, out_channels: int, extra_blocks: bool = True):
        super().__init__()
        self.body = body
        channels = body.feature_info.channels()
        self.fpn = FeaturePyramidNetwork(
            channels, out_channels, LastLevelP6P7(out_channels, out_channels) if extra_blocks else None
        )
        self.out_channels = out_channels
        self.strides = [*body.feature_info.reduction(), *([] if not extra_blocks else [0, 0])]
        if extra_blocks:
            self.strides[-2:] = [self.strides[-3] * 2, self.strides[-3] * 4]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(self.body(x))
