"""The layers that change with the number of spatial dimensions, as one record chosen once per
model (``spatial_dims``): images are 2-D, a time series or a text is 1-D. Every block, stem and
shortcut takes its convolutions and pools from here, so the one skeleton builds both (Wang et al.
2017, arXiv:1611.06455, carry the ResNet to time series with exactly these swaps)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Ops:
    dims: int
    conv: type[nn.Conv1d] | type[nn.Conv2d]
    batchnorm: type[nn.BatchNorm1d] | type[nn.BatchNorm2d]
    instancenorm: type[nn.InstanceNorm1d] | type[nn.InstanceNorm2d]
    max_pool: type[nn.MaxPool1d] | type[nn.MaxPool2d]
    avg_pool: type[nn.AvgPool1d] | type[nn.AvgPool2d]
    adaptive_avg_pool: type[nn.AdaptiveAvgPool1d] | type[nn.AdaptiveAvgPool2d]


OPS_1D = Ops(1, nn.Conv1d, nn.BatchNorm1d, nn.InstanceNorm1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d)
OPS_2D = Ops(2, nn.Conv2d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_OPS = {1: OPS_1D, 2: OPS_2D}


def get_ops(spatial_dims: int) -> Ops:
    if spatial_dims not in _OPS:
        raise ValueError(f"spatial_dims={spatial_dims!r}: expected 1 (sequences) or 2 (images)")
    return _OPS[spatial_dims]
