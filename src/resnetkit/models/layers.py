"""Small layers shared by every ResNet family: convolutions, shortcuts, stochastic depth, norm/act lookup."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .ops import OPS_2D, Ops

LayerFn = Callable[..., nn.Module]


def conv3x3(
    in_chs: int, out_chs: int, stride: int = 1, groups: int = 1, dilation: int = 1, ops: Ops = OPS_2D
) -> nn.Conv1d | nn.Conv2d:
    return ops.conv(in_chs, out_chs, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups, bias=False)


def conv1x1(in_chs: int, out_chs: int, stride: int = 1, ops: Ops = OPS_2D, bias: bool = False) -> nn.Conv1d | nn.Conv2d:
    return ops.conv(in_chs, out_chs, 1, stride=stride, bias=bias)


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convolution weights (and what the module holds) in channels_last, oneDNN's native layout."""
    # nn.Module.to takes memory_format (documented); PyTorch's stubs leave it out.
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016, arXiv:1603.09382): drop a sample's whole residual branch."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class PadShortcut(nn.Module):
    """Option A of He et al. 2015 (§3.3): a parameter-free identity that subsamples by the stride
    and fills the new channels with zeros."""

    def __init__(self, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f"option A shortcut cannot shrink channels ({in_chs} -> {out_chs})")
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.ndim - 2  # 1 for sequences, 2 for images
        if self.stride > 1:
            x = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * spatial]
        return F.pad(x, (0, 0) * spatial + (0, self.out_chs - self.in_chs))

    def extra_repr(self) -> str:
        return f"{self.in_chs}->{self.out_chs}, stride={self.stride}"


SHORTCUTS = ("A", "B", "C", "norm", "none")


def make_shortcut(
    kind: str | None,
    in_chs: int,
    out_chs: int,
    stride: int,
    norm_layer: LayerFn | None,
    avg_down: bool = False,
    ops: Ops = OPS_2D,
    bias: bool = False,
) -> tuple[bool, nn.Module | None]:
    """Return (residual, downsample) for one block.

    kind follows He et al. 2015 §3.3: "A" zero-pads when dimensions grow, "B" projects only then,
    "C" projects always; "none" gives the plain (no-shortcut) twin. ``norm_layer=None`` gives the
    bare projection conv of pre-activation units (He et al. 2016), whose input is already normalized.
    ``avg_down`` is the "d" tweak of Bag of Tricks (He et al. 2019, arXiv:1812.01187): average-pool,
    then a stride-1 projection, so the 1x1 conv no longer skips three quarters of its input.
    "norm" projects where dimensions change and applies the norm alone where they do not: the
    shortcut of Wang et al. 2017's time-series ResNet as dl-4-tsc (Fawaz et al. 2019,
    ``classifiers/resnet.py``) builds it. ``bias``: the projection conv has a bias (Keras's default there).
    """
    kind = "none" if kind is None else str(kind)
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut={kind!r}: expected one of {', '.join(SHORTCUTS)}")
    if kind == "none":
        return False, None
    reshapes = stride != 1 or in_chs != out_chs
    if kind == "norm" and not reshapes:
        if norm_layer is None:
            raise ValueError("shortcut='norm' needs a norm layer: pre-activation units have none on the shortcut")
        return True, norm_layer(out_chs)
    if kind == "A":
        return True, PadShortcut(in_chs, out_chs, stride) if reshapes else None
    if kind == "B" and not reshapes:
        return True, None
    layers: list[nn.Module] = []
    if avg_down:
        # timm's downsample_avg layout: keys downsample.1 (conv) and downsample.2 (norm).
        pool = ops.avg_pool(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        layers.append(pool)
        layers.append(conv1x1(in_chs, out_chs, ops=ops, bias=bias))
    else:
        layers.append(conv1x1(in_chs, out_chs, stride, ops=ops, bias=bias))
    if norm_layer is not None:
        layers.append(norm_layer(out_chs))
    return True, nn.Sequential(*layers) if len(layers) > 1 else layers[0]


class GroupNorm(nn.GroupNorm):
    """GroupNorm (Wu & He 2018) that takes only the channel count, like BatchNorm2d, so it can be
    passed as ``norm_layer``; the group count falls back to a divisor for narrow layers (CIFAR's 16)."""

    def __init__(self, num_channels: int, num_groups: int = 32, **kwargs):
        super().__init__(math.gcd(num_groups, num_channels), num_channels, **kwargs)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with statistics and affine parameters fixed (buffers, not parameters), as the
    detection backbones of torchvision and detectron2 use: detection batches are too small for
    batch statistics. Same keys as torchvision's (no ``num_batches_tracked``), so its published
    checkpoints load as they are; a ``num_batches_tracked`` in a file is ignored."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        shape = (1, -1) + (1,) * (x.ndim - 2)  # images and sequences alike
        return x * scale.reshape(shape) + shift.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


_NORMS: dict[str, LayerFn] = {"frozen_batchnorm": FrozenBatchNorm2d, "groupnorm": GroupNorm}
_ACTS: dict[str, LayerFn] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "mish": nn.Mish,
}


def _resolve(value: str | LayerFn, table: dict[str, LayerFn], what: str) -> LayerFn:
    if callable(value):
        return value
    if isinstance(value, str) and value.lower() in table:
        return table[value.lower()]
    raise ValueError(f"{what}={value!r}: expected a callable or one of {', '.join(table)}")


def get_norm_layer(value: str | LayerFn, ops: Ops = OPS_2D) -> LayerFn:
    """A norm by name, of the model's dimensions (``ops``), or the callable given."""
    table = {"batchnorm": ops.batchnorm, **_NORMS, "instancenorm": partial(ops.instancenorm, affine=True)}
    return _resolve(value, table, "norm_layer")


def get_act_layer(value: str | LayerFn) -> LayerFn:
    return _resolve(value, _ACTS, "act_layer")
