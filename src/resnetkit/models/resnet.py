"""The ResNet family with post-activation units (He et al. 2015, arXiv:1512.03385): ImageNet and
CIFAR layouts, plain twins, ResNeXt, wide and Bag-of-Tricks variants all come from this one class."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .base import FeatureInfo, ResNetBase, build_stages
from .layers import LayerFn, get_act_layer, get_norm_layer
from .stem import stem_layers


class ResNet(ResNetBase):
    """``block`` and ``layers`` choose the depth; the rest are the knobs of the papers:

    shortcut: "A" | "B" | "C" (He et al. 2015 §3.3) or "none" for the plain twin.
    stem_type: "imagenet" | "deep" | "cifar"; avg_down: the Bag-of-Tricks "d" projection.
    groups / width_per_group: ResNeXt (Xie et al. 2017) and wide (Zagoruyko & Komodakis 2016) bottlenecks.
    output_stride: 8 or 16 trades stride for dilation in the last stages.
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        channels: Sequence[int] = (64, 128, 256, 512),
        stem_type: str = "imagenet",
        stem_width: int = 32,
        shortcut: str | None = "B",
        avg_down: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        output_stride: int | None = None,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_residual: bool = False,
        norm_layer: str | LayerFn = "batchnorm",
        act_layer: str | LayerFn = "relu",
    ):
        super().__init__()
        norm_layer, act_layer = get_norm_layer(norm_layer), get_act_layer(act_layer)
        self.first_conv = "conv1.0" if stem_type == "deep" else "conv1"
        stem, stem_stride, stem_info = stem_layers(stem_type, in_chans, channels[0], stem_width, norm_layer, act_layer)
        for name, module in stem.items():
            self.add_module(name, module)
        plan = build_stages(
            block,
            layers,
            channels,
            channels[0],
            stem_stride,
            shortcut,
            norm_layer,
            avg_down,
            output_stride,
            drop_path_rate,
            dict(groups=groups, base_width=width_per_group, norm_layer=norm_layer, act_layer=act_layer),
        )
        for i, stage in enumerate(plan.stages):
            self.add_module(f"layer{i + 1}", stage)
        self.feature_info = FeatureInfo([stem_info, *plan.feature_info])
        self.num_features = plan.out_chs
        self.add_head(num_classes, drop_rate)
        self.init_weights(zero_init_residual)
