"""Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks",
arXiv:1603.05027) and wide ResNets (Zagoruyko & Komodakis 2016, arXiv:1605.07146)."""

from __future__ import annotations

from collections.abc import Sequence

from .base import ResNetBase
from .blocks import ResidualUnit
from .layers import LayerFn


class PreActResNet(ResNetBase):
    """BN and ReLU move before each conv so the shortcut path is a clean identity from the first
    unit to the last; a final BN-ReLU (``norm``, ``act``) normalizes the sum before the head."""

    def __init__(
        self,
        block: type[ResidualUnit],
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
        spatial_dims: int = 2,
        stage_stride: int = 2,
        vocab_size: int | None = None,
        embed_dim: int = 16,
    ):
        super().__init__()
        self.build(
            block=block,
            layers=layers,
            num_classes=num_classes,
            in_chans=in_chans,
            channels=channels,
            stem_type=stem_type,
            stem_width=stem_width,
            stem_chs=stem_chs,
            shortcut=shortcut,
            avg_down=avg_down,
            groups=groups,
            width_per_group=width_per_group,
            output_stride=output_stride,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            zero_init_residual=zero_init_residual,
            norm_layer=norm_layer,
            act_layer=act_layer,
            preact=True,
            block_kwargs={"dropout": dropout},
            spatial_dims=spatial_dims,
            stage_stride=stage_stride,
            vocab_size=vocab_size,
            embed_dim=embed_dim,
        )
