"""What every resnetkit model shares: the downstream interface (timm's forward_features /
forward_head / reset_classifier / feature_info) and the stage builder both families use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .layers import LayerFn, make_shortcut


class FeatureInfo(list):
    """One dict per feature level: ``num_chs``, ``reduction`` (stride w.r.t. the input), ``module``
    (the child whose output it is)."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]


@dataclass
class StagePlan:
    stages: list[nn.Sequential] = field(default_factory=list)
    feature_info: FeatureInfo = field(default_factory=FeatureInfo)
    out_chs: int = 0


def build_stages(
    block: type[nn.Module],
    layers: Sequence[int],
    channels: Sequence[int],
    in_chs: int,
    stem_stride: int,
    shortcut: str | None,
    shortcut_norm: LayerFn | None,
    avg_down: bool,
    output_stride: int | None,
    drop_path_rate: float,
    block_kwargs: dict,
) -> StagePlan:
    """Stages of ``layers[i]`` blocks; every stage after the first halves the resolution, unless
    ``output_stride`` asks to keep it, in which case the stride becomes dilation (as in DeepLab,
    Chen et al. 2017) so a segmentation head sees denser features with the same weights."""
    if len(layers) != len(channels):
        raise ValueError(f"layers {tuple(layers)} and channels {tuple(channels)} must have the same length")
    if output_stride is not None and (output_stride < stem_stride or output_stride & (output_stride - 1)):
        raise ValueError(f"output_stride={output_stride}: must be a power of two >= the stem stride ({stem_stride})")
    plan = StagePlan()
    total_blocks, block_idx = sum(layers), 0
    net_stride, dilation = stem_stride, 1
    for stage_idx, (num_blocks, planes) in enumerate(zip(layers, channels)):
        stride = 1 if stage_idx == 0 else 2
        first_dilation = dilation
        if output_stride is not None and net_stride * stride > output_stride:
            dilation, stride = dilation * stride, 1
        else:
            net_stride *= stride
        out_chs = planes * block.expansion
        blocks = []
        for i in range(num_blocks):
            s = stride if i == 0 else 1
            residual, downsample = make_shortcut(shortcut, in_chs, out_chs, s, shortcut_norm, avg_down)
            # Stochastic depth's linear decay rule (Huang et al. 2016, §3): deeper blocks drop more.
            dpr = drop_path_rate * block_idx / max(total_blocks - 1, 1)
            blocks.append(
                block(
                    in_chs,
                    planes,
                    stride=s,
                    downsample=downsample,
                    residual=residual,
                    dilation=dilation,
                    first_dilation=first_dilation if i == 0 else dilation,
                    drop_path=dpr,
                    **block_kwargs,
                )
            )
            in_chs, block_idx = out_chs, block_idx + 1
        plan.stages.append(nn.Sequential(*blocks))
        plan.feature_info.append(dict(num_chs=out_chs, reduction=net_stride, module=f"layer{stage_idx + 1}"))
    plan.out_chs = in_chs
    return plan


class ResNetBase(nn.Module):
    """The interface downstream tools use. Subclasses register their children in forward order
    (stem, ``layer1..N``, then ``add_head``), so ``forward_features`` and the features-only
    backbone can run them as a sequence, and set ``num_features`` and ``feature_info``."""

    num_classes: int
    num_features: int
    feature_info: FeatureInfo
    first_conv: str = "conv1"
    classifier: str = "fc"

    def add_head(self, num_classes: int, drop_rate: float) -> None:
        self.num_classes = num_classes
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name, module in self.named_children():
            if name == "global_pool":
                break
            x = module(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for ``num_classes`` (0 removes it: the model returns pooled features)."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def blocks(self) -> list[nn.Module]:
        """All residual units in forward order."""
        return [b for name, stage in self.named_children() if name.startswith("layer") for b in stage]

    def zero_init_last(self) -> None:
        # Each unit starts as an identity (Goyal et al. 2017, arXiv:1706.02677, §5.1).
        for b in self.blocks():
            if b.residual and getattr(b.branch_out, "weight", None) is not None:
                nn.init.zeros_(b.branch_out.weight)

    def init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            self.zero_init_last()
