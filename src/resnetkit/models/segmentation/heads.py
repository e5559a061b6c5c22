"""Segmentation heads, laid out as torchvision's so its checkpoints load: FCN's (Long et al.
2015) and DeepLabV3's atrous spatial pyramid pooling (Chen et al. 2017, arXiv:1706.05587)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FCNHead(nn.Sequential):
    """3x3 conv to ``channels`` (a quarter of the input's by default), BN, ReLU, dropout, 1x1 to the classes."""

    def __init__(self, in_channels: int, num_classes: int, channels: int | None = None):
        inter = channels or in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Conv2d(inter, num_classes, 1),
        )


class ASPPConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, dilation: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class ASPPPooling(nn.Sequential):
    """Image-level features (§3.3): global average, 1x1 conv, upsampled back over the map, so the
    head sees the whole image even where the widest atrous rate falls off the feature map."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        for module in self:
            x = module(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """A 1x1 conv, three 3x3 atrous convs at ``rates`` and image pooling, side by side, then a 1x1
    projection: context at several scales without losing resolution (§3.3)."""

    def __init__(self, in_channels: int, rates: Sequence[int], out_channels: int = 256):
        super().__init__()
        branches: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())
        ]
        branches += [ASPPConv(in_channels, out_channels, rate) for rate in rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


class DeepLabHead(nn.Sequential):
    def __init__(
        self, in_channels: int, num_classes: int, channels: int | None = None, rates: Sequence[int] = (12, 24, 36)
    ):
        channels = channels or 256
        super().__init__(
            ASPP(in_channels, rates, channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, num_classes, 1),
        )
