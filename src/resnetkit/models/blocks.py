"""Residual units. Attribute names follow torchvision (conv1/bn1/.../downsample) because checkpoint
keys are public API; every activation is its own module so hooks see each one exactly once.

Each block exposes ``residual`` (False for the plain twin), ``forward_shortcut`` (what the block
passes on when its branch is removed, for lesion studies) and ``branch_out`` (the
last layer of the residual branch: its output, before the addition, is the response that He et al.
2015 Fig. 7 measures, and zero-initialising its weight makes the unit start as an identity)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .layers import DropPath, LayerFn, PadShortcut, conv1x1, conv3x3


class ResidualUnit(nn.Module):
    """What every unit offers the tools downstream (analysis, lesions, zero-init)."""

    expansion: ClassVar[int] = 1  # output channels per ``planes``
    residual: bool  # False for the plain twin: the branch alone, no shortcut
    downsample: nn.Module | None

    @property
    def branch_out(self) -> nn.Module:
        """The last layer of the residual branch."""
        raise NotImplementedError

    def forward_shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """What the unit passes on with its branch removed."""
        raise NotImplementedError


class BasicBlock(ResidualUnit):
    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: LayerFn = nn.BatchNorm2d,
        act_layer: LayerFn = nn.ReLU,
        drop_path: float = 0.0,
    ):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and width_per_group=64")
        self.conv1 = conv3x3(in_chs, planes, stride, dilation=first_dilation or dilation)
        self.bn1 = norm_layer(planes)
        self.act1 = act_layer()
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.act2 = act_layer()

    @property
    def branch_out(self) -> nn.Module:
        return self.bn2

    def forward_shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.downsample(x) if self.downsample is not None else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = self.drop_path(out) + (self.downsample(x) if self.downsample is not None else x)
        return self.act2(out)


class Bottleneck(ResidualUnit):
    """1x1-3x3-1x1 bottleneck. The stride sits on the 3x3 conv ("ResNet v1.5", as torchvision and
    timm), not on the first 1x1 as in the paper's Caffe release: it sees all input positions and
    gives ~0.5% better ImageNet top-1 (https://ngc.nvidia.com/catalog/model-scripts/nvidia:resnet_50_v1_5_for_pytorch)."""

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: LayerFn = nn.BatchNorm2d,
        act_layer: LayerFn = nn.ReLU,
        drop_path: float = 0.0,
    ):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(in_chs, width)
        self.bn1 = norm_layer(width)
        self.act1 = act_layer()
        self.conv2 = conv3x3(width, width, stride, groups, dilation=first_dilation or dilation)
        self.bn2 = norm_layer(width)
        self.act2 = act_layer()
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.act3 = act_layer()

    @property
    def branch_out(self) -> nn.Module:
        return self.bn3

    def forward_shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self.act3(self.downsample(x) if self.downsample is not None else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = self.drop_path(out) + (self.downsample(x) if self.downsample is not None else x)
        return self.act3(out)


class _PreActBase(ResidualUnit):
    """Shared shortcut handling of pre-activation units (He et al. 2016, arXiv:1603.05027).

    A projection reads the pre-activated input, as in the paper's released code, because the
    identity path carries un-normalized sums; a parameter-free shortcut (identity, option A) reads x.
    """

    bn1: nn.Module
    act1: nn.Module

    def _shortcut(self, x: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        if self.downsample is None:
            return x
        return self.downsample(x if isinstance(self.downsample, PadShortcut) else pre)

    def forward_shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self._shortcut(x, self.act1(self.bn1(x)))


class PreActBasicBlock(_PreActBase):
    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: LayerFn = nn.BatchNorm2d,
        act_layer: LayerFn = nn.ReLU,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("PreActBasicBlock supports only groups=1 and width_per_group=64")
        self.bn1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = conv3x3(in_chs, planes, stride, dilation=first_dilation or dilation)
        self.bn2 = norm_layer(planes)
        self.act2 = act_layer()
        # Dropout between the two convs is the wide-ResNet choice (Zagoruyko & Komodakis 2016, §2.3).
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    @property
    def branch_out(self) -> nn.Module:
        return self.conv2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.act2(self.bn2(out))))
        if self.residual:
            out = self.drop_path(out) + self._shortcut(x, pre)
        return out


class PreActBottleneck(_PreActBase):
    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: LayerFn = nn.BatchNorm2d,
        act_layer: LayerFn = nn.ReLU,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.bn1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = conv1x1(in_chs, width)
        self.bn2 = norm_layer(width)
        self.act2 = act_layer()
        self.conv2 = conv3x3(width, width, stride, groups, dilation=first_dilation or dilation)
        self.bn3 = norm_layer(width)
        self.act3 = act_layer()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    @property
    def branch_out(self) -> nn.Module:
        return self.conv3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.conv3(self.dropout(self.act3(self.bn3(out))))
        if self.residual:
            out = self.drop_path(out) + self._shortcut(x, pre)
        return out
