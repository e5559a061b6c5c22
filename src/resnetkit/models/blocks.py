"""Residual units. Attribute names follow torchvision (conv1/bn1/.../downsample) because checkpoint
keys are public API; every activation is its own module so hooks see each one exactly once.

Each block exposes ``residual`` (False for the plain twin), ``forward_shortcut`` (what the block
passes on when its branch is removed, for lesion studies) and ``branch_out`` (the
last layer of the residual branch: its output, before the addition, is the response that He et al.
2015 Fig. 7 measures, and zero-initialising its weight makes the unit start as an identity)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .layers import DropPath, LayerFn, PadShortcut, conv1x1, conv3x3
from .ops import OPS_2D, Ops


class ResidualUnit(nn.Module):
    """What every unit offers the tools downstream (analysis, lesions, zero-init)."""

    expansion: ClassVar[int] = 1  # output channels per ``planes``
    conv_bias: ClassVar[bool] = False  # whether its convolutions (and its shortcut's) carry a bias
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
        ops: Ops = OPS_2D,
    ):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and width_per_group=64")
        self.conv1 = conv3x3(in_chs, planes, stride, dilation=first_dilation or dilation, ops=ops)
        self.bn1 = norm_layer(planes)
        self.act1 = act_layer()
        self.conv2 = conv3x3(planes, planes, dilation=dilation, ops=ops)
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
        ops: Ops = OPS_2D,
    ):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(in_chs, width, ops=ops)
        self.bn1 = norm_layer(width)
        self.act1 = act_layer()
        self.conv2 = conv3x3(width, width, stride, groups, dilation=first_dilation or dilation, ops=ops)
        self.bn2 = norm_layer(width)
        self.act2 = act_layer()
        self.conv3 = conv1x1(width, planes * self.expansion, ops=ops)
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
        ops: Ops = OPS_2D,
    ):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("PreActBasicBlock supports only groups=1 and width_per_group=64")
        self.bn1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = conv3x3(in_chs, planes, stride, dilation=first_dilation or dilation, ops=ops)
        self.bn2 = norm_layer(planes)
        self.act2 = act_layer()
        # Dropout between the two convs is the wide-ResNet choice (Zagoruyko & Komodakis 2016, §2.3).
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(planes, planes, dilation=dilation, ops=ops)
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
        ops: Ops = OPS_2D,
    ):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.bn1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = conv1x1(in_chs, width, ops=ops)
        self.bn2 = norm_layer(width)
        self.act2 = act_layer()
        self.conv2 = conv3x3(width, width, stride, groups, dilation=first_dilation or dilation, ops=ops)
        self.bn3 = norm_layer(width)
        self.act3 = act_layer()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv3 = conv1x1(width, planes * self.expansion, ops=ops)
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


class TSCBlock(ResidualUnit):
    """The unit of Wang, Yan & Oates 2017 (arXiv:1611.06455, Fig. 1b), the time-series ResNet,
    as dl-4-tsc (Fawaz et al. 2019, ``classifiers/resnet.py``) builds it: convolutions of 8, 5 and
    3 steps, each followed by BN (ReLU after the first two), Keras's "same" padding and stride 1, so the
    series keeps its length through the net. Its convolutions carry biases, as Keras's Conv1D
    does there, so the parameter count is the reference's."""

    expansion = 1
    conv_bias = True
    kernel_sizes: ClassVar[tuple[int, int, int]] = (8, 5, 3)

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
        norm_layer: LayerFn = nn.BatchNorm1d,
        act_layer: LayerFn = nn.ReLU,
        drop_path: float = 0.0,
        ops: Ops = OPS_2D,
    ):
        super().__init__()
        if stride != 1 or groups != 1 or base_width != 64:
            raise ValueError("TSCBlock keeps the length (stride 1, 'same' padding): set stage_stride=1, groups=1")
        k1, k2, k3 = self.kernel_sizes
        d1 = first_dilation or dilation
        self.conv1 = ops.conv(in_chs, planes, k1, dilation=d1)
        self.bn1 = norm_layer(planes)
        self.act1 = act_layer()
        self.conv2 = ops.conv(planes, planes, k2, dilation=dilation)
        self.bn2 = norm_layer(planes)
        self.act2 = act_layer()
        self.conv3 = ops.conv(planes, planes, k3, dilation=dilation)
        self.pads = [_same_padding(k, d, ops.dims) for k, d in ((k1, d1), (k2, dilation), (k3, dilation))]
        self.bn3 = norm_layer(planes)
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
        p1, p2, p3 = self.pads
        out = self.act1(self.bn1(self.conv1(F.pad(x, p1))))
        out = self.act2(self.bn2(self.conv2(F.pad(out, p2))))
        out = self.bn3(self.conv3(F.pad(out, p3)))
        if self.residual:
            out = self.drop_path(out) + (self.downsample(x) if self.downsample is not None else x)
        return self.act3(out)


def _same_padding(kernel: int, dilation: int, dims: int) -> tuple[int, ...]:
    """Keras's "same" padding: an even kernel's extra step of padding goes after the input."""
    total = (kernel - 1) * dilation
    return (total // 2, total - total // 2) * dims
