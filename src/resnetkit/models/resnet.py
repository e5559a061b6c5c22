"""The ResNet family with post-activation units (He et al. 2015, arXiv:1512.03385): ImageNet and
CIFAR layouts, plain twins, ResNeXt, wide and Bag-of-Tricks variants all come from this one class."""

from __future__ import annotations

from collections.abc import Sequence

from .base import ResNetBase
from .blocks import ResidualUnit
from .layers import LayerFn


class ResNet(ResNetBase):
    """``block`` and ``layers`` choose the depth; the rest are the knobs of the papers:

    shortcut: "A" | "B" | "C" (He et al. 2015 §3.3) or "none" for the plain twin.
    stem_type: one of stem.STEMS ("imagenet", "deep", "cifar", "pool", ...); avg_down: the Bag-of-Tricks "d" projection.
    groups / width_per_group: ResNeXt (Xie et al. 2017) and wide (Zagoruyko & Komodakis 2016) bottlenecks.
    output_stride: 8 or 16 trades stride for dilation in the last stages.
    spatial_dims: 1 builds the same net for sequences (Conv1d, BatchNorm1d, 1-D pools);
    stage_stride: 1 keeps the length through every stage; vocab_size / embed_dim: a byte model.
    """

    def __init__(
        self,
        block: type[ResidualUnit],
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
            stem_chs=None,
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
            preact=False,
            spatial_dims=spatial_dims,
            stage_stride=stage_stride,
            vocab_size=vocab_size,
            embed_dim=embed_dim,
        )
