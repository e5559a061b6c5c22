"""Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks",
arXiv:1603.05027) and wide ResNets (Zagoruyko & Komodakis 2016, arXiv:1605.07146)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .base import FeatureInfo, ResNetBase, build_stages
from .layers import LayerFn, get_act_layer, get_norm_layer
from .stem import stem_layers


class PreActResNet(ResNetBase):
    """BN and ReLU move before each conv so the shortcut path is a clean identity from the first
    unit to the last; a final BN-ReLU (``norm``, ``act``) normalizes the sum before the head."""

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        num_classes: int = 10,
        in_chans: int = 3,
        channels: Sequence[int] = (16, 32, 64),
        stem_type: str = "cifar",
        stem_width: int = 32,
        stem_chs: int | None = None,
        shortcut: str | None = "B",
        avg_down: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        output_stride: int | None = None,
        dropout: float = 0.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_residual: bool = False,
        norm_layer: str | LayerFn = "batchnorm",
        act_layer: str | LayerFn = "relu",
    ):
        super().__init__()
        norm_layer, act_layer = get_norm_layer(norm_layer), get_act_layer(act_layer)
        self.first_conv = "conv1.0" if stem_type == "deep" else "conv1"
        stem_chs = stem_chs or channels[0]
        stem, stem_stride, stem_info = stem_layers(stem_type, in_chans, stem_chs, stem_width, None, act_layer)
        for name, module in stem.items():
            self.add_module(name, module)
        plan = build_stages(
            block,
            layers,
            channels,
            stem_chs,
            stem_stride,
            shortcut,
            None,
            avg_down,
            output_stride,
            drop_path_rate,
            dict(
                groups=groups, base_width=width_per_group, norm_layer=norm_layer, act_layer=act_layer, dropout=dropout
            ),
        )
        for i, stage in enumerate(plan.stages):
            self.add_module(f"layer{i + 1}", stage)
        self.num_features = plan.out_chs
        self.norm = norm_layer(self.num_features)
        self.act = act_layer()
        # The last stage's feature is taken after the final BN-ReLU, the only normalized one.
        plan.feature_info[-1] = dict(plan.feature_info[-1], module="act")
        self.feature_info = FeatureInfo([stem_info, *plan.feature_info])
        self.add_head(num_classes, drop_rate)
        self.init_weights(zero_init_residual)
