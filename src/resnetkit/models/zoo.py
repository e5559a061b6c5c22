"""Every named model: each builder passes a block type and stage depths to one family class.

Defaults follow the source of each name, and keyword overrides win: ``resnet20(shortcut="B")``."""

from __future__ import annotations

from .blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, TSCBlock
from .preact import PreActResNet
from .registry import register_model
from .resnet import ResNet


def _resnet(block, layers, **kwargs) -> ResNet:
    return ResNet(block, layers, **kwargs)


def _tricks(block, layers, avg_down: bool, **kwargs) -> ResNet:
    # Bag of Tricks (He et al. 2019, arXiv:1812.01187): "c" = deep 3x3 stem, "d" = c + avg-pool shortcut.
    return ResNet(block, layers, **{"stem_type": "deep", "stem_width": 32, "avg_down": avg_down, **kwargs})


def _cifar(depth: int, **kwargs) -> ResNet:
    # He et al. 2015 §4.2: 6n+2 layers, 16/32/64 filters, option A shortcuts, 10 classes.
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    return ResNet(
        BasicBlock,
        (n, n, n),
        **{
            "num_classes": 10,
            "channels": (16, 32, 64),
            "stem_type": "cifar",
            "shortcut": "A",
            **kwargs,
        },
    )


def _preact_cifar(block, depth: int, **kwargs) -> PreActResNet:
    # He et al. 2016: 6n+2 layers with basic units, 9n+2 with bottlenecks.
    per_block = 3 if block is PreActBottleneck else 2
    n = (depth - 2) // (3 * per_block)
    return PreActResNet(block, (n, n, n), **{"num_classes": 10, "channels": (16, 32, 64), **kwargs})


def _preact_imagenet(block, layers, **kwargs) -> PreActResNet:
    return PreActResNet(
        block,
        layers,
        **{
            "num_classes": 1000,
            "channels": (64, 128, 256, 512),
            "stem_type": "imagenet",
            **kwargs,
        },
    )


def _wrn(depth: int, widen: int, **kwargs) -> PreActResNet:
    # Zagoruyko & Komodakis 2016: WRN-d-k, (d-4)/6 pre-activation basic units per stage, k-times wider.
    n = (depth - 4) // 6
    return PreActResNet(
        PreActBasicBlock,
        (n, n, n),
        **{
            "num_classes": 10,
            "channels": (16 * widen, 32 * widen, 64 * widen),
            "stem_chs": 16,
            **kwargs,
        },
    )


# ImageNet ResNets, paper Table 1 (torchvision layout).
@register_model(ResNet)
def resnet18(**kwargs):
    return _resnet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model(ResNet)
def resnet34(**kwargs):
    return _resnet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model(ResNet)
def resnet50(**kwargs):
    return _resnet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model(ResNet)
def resnet101(**kwargs):
    return _resnet(Bottleneck, (3, 4, 23, 3), **kwargs)


@register_model(ResNet)
def resnet152(**kwargs):
    return _resnet(Bottleneck, (3, 8, 36, 3), **kwargs)


# ResNeXt (Xie et al. 2017, arXiv:1611.05431) and wide bottlenecks, as torchvision names them.
@register_model(ResNet)
def resnext50_32x4d(**kwargs):
    return _resnet(Bottleneck, (3, 4, 6, 3), **{"groups": 32, "width_per_group": 4, **kwargs})


@register_model(ResNet)
def resnext101_32x8d(**kwargs):
    return _resnet(Bottleneck, (3, 4, 23, 3), **{"groups": 32, "width_per_group": 8, **kwargs})


@register_model(ResNet)
def resnext101_64x4d(**kwargs):
    return _resnet(Bottleneck, (3, 4, 23, 3), **{"groups": 64, "width_per_group": 4, **kwargs})


@register_model(ResNet)
def wide_resnet50_2(**kwargs):
    return _resnet(Bottleneck, (3, 4, 6, 3), **{"width_per_group": 128, **kwargs})


@register_model(ResNet)
def wide_resnet101_2(**kwargs):
    return _resnet(Bottleneck, (3, 4, 23, 3), **{"width_per_group": 128, **kwargs})


# Bag-of-Tricks variants, as timm names them.
@register_model(ResNet)
def resnet18d(**kwargs):
    return _tricks(BasicBlock, (2, 2, 2, 2), avg_down=True, **kwargs)


@register_model(ResNet)
def resnet26(**kwargs):
    return _resnet(Bottleneck, (2, 2, 2, 2), **kwargs)


@register_model(ResNet)
def resnet26d(**kwargs):
    return _tricks(Bottleneck, (2, 2, 2, 2), avg_down=True, **kwargs)


@register_model(ResNet)
def resnet50c(**kwargs):
    return _tricks(Bottleneck, (3, 4, 6, 3), avg_down=False, **kwargs)


@register_model(ResNet)
def resnet50d(**kwargs):
    return _tricks(Bottleneck, (3, 4, 6, 3), avg_down=True, **kwargs)


@register_model(ResNet)
def resnet101d(**kwargs):
    return _tricks(Bottleneck, (3, 4, 23, 3), avg_down=True, **kwargs)


# CIFAR ResNets, paper §4.2 and Table 6.
@register_model(ResNet)
def resnet20(**kwargs):
    return _cifar(20, **kwargs)


@register_model(ResNet)
def resnet32(**kwargs):
    return _cifar(32, **kwargs)


@register_model(ResNet)
def resnet44(**kwargs):
    return _cifar(44, **kwargs)


@register_model(ResNet)
def resnet56(**kwargs):
    return _cifar(56, **kwargs)


@register_model(ResNet)
def resnet110(**kwargs):
    return _cifar(110, **kwargs)


@register_model(ResNet)
def resnet1202(**kwargs):
    return _cifar(1202, **kwargs)


# Fast small-image training: one basic unit a stage, wider than ResNet-20 (48/96/192) and after a
# conv-then-pool stem, so every stage runs at half ResNet-20's resolution: 7 convs and 23M
# multiply-adds at 28px against ResNet-20's 19 and 31M. Wide, shallow convs run faster per
# multiply-add on a CPU than 16-channel ones. The fashion-mnist-fast recipe narrows the stem and
# first stage to 32 (``channels=(32, 96, 192)``: 18M multiply-adds, 1.45x the training speed).
@register_model(ResNet)
def resnet8_pool(**kwargs):
    return ResNet(
        BasicBlock,
        (1, 1, 1),
        **{"num_classes": 10, "channels": (48, 96, 192), "stem_type": "pool", "shortcut": "B", **kwargs},
    )


# Plain twins (paper Fig. 6 and Table 2): the same layers with every shortcut removed.
@register_model(ResNet)
def plain20(**kwargs):
    return _cifar(20, **{"shortcut": "none", **kwargs})


@register_model(ResNet)
def plain32(**kwargs):
    return _cifar(32, **{"shortcut": "none", **kwargs})


@register_model(ResNet)
def plain44(**kwargs):
    return _cifar(44, **{"shortcut": "none", **kwargs})


@register_model(ResNet)
def plain56(**kwargs):
    return _cifar(56, **{"shortcut": "none", **kwargs})


@register_model(ResNet)
def plain110(**kwargs):
    return _cifar(110, **{"shortcut": "none", **kwargs})


@register_model(ResNet)
def plain18(**kwargs):
    return _resnet(BasicBlock, (2, 2, 2, 2), **{"shortcut": "none", **kwargs})


@register_model(ResNet)
def plain34(**kwargs):
    return _resnet(BasicBlock, (3, 4, 6, 3), **{"shortcut": "none", **kwargs})


# Pre-activation ResNets (He et al. 2016, arXiv:1603.05027).
@register_model(PreActResNet)
def preact_resnet18(**kwargs):
    return _preact_imagenet(PreActBasicBlock, (2, 2, 2, 2), **kwargs)


@register_model(PreActResNet)
def preact_resnet34(**kwargs):
    return _preact_imagenet(PreActBasicBlock, (3, 4, 6, 3), **kwargs)


@register_model(PreActResNet)
def preact_resnet50(**kwargs):
    return _preact_imagenet(PreActBottleneck, (3, 4, 6, 3), **kwargs)


@register_model(PreActResNet)
def preact_resnet110(**kwargs):
    return _preact_cifar(PreActBasicBlock, 110, **kwargs)


@register_model(PreActResNet)
def preact_resnet164(**kwargs):
    return _preact_cifar(PreActBottleneck, 164, **kwargs)


@register_model(PreActResNet)
def preact_resnet1001(**kwargs):
    return _preact_cifar(PreActBottleneck, 1001, **kwargs)


# Wide ResNets (Zagoruyko & Komodakis 2016, arXiv:1605.07146).
@register_model(PreActResNet)
def wrn16_4(**kwargs):
    return _wrn(16, 4, **kwargs)


@register_model(PreActResNet)
def wrn16_8(**kwargs):
    return _wrn(16, 8, **kwargs)


@register_model(PreActResNet)
def wrn28_10(**kwargs):
    return _wrn(28, 10, **kwargs)


@register_model(PreActResNet)
def wrn40_4(**kwargs):
    return _wrn(40, 4, **kwargs)


# Sequences. Every family above builds in 1-D (create_model(name, spatial_dims=1)); these are the
# layouts the sequence papers published.
def _tsc(**kwargs) -> ResNet:
    # Wang, Yan & Oates 2017 (arXiv:1611.06455) as dl-4-tsc builds it (Fawaz et al. 2019): three
    # units of 64, 128, 128 filters, no stem, full length throughout, global average pooling.
    return ResNet(
        TSCBlock,
        (1, 1, 1),
        **{
            "num_classes": 2,
            "in_chans": 1,
            "channels": (64, 128, 128),
            "stem_type": "none",
            "shortcut": "norm",
            "stage_stride": 1,
            "spatial_dims": 1,
            **kwargs,
        },
    )


def _text(**kwargs) -> ResNet:
    # VDCNN-9 (Conneau et al. 2017, arXiv:1606.01781, Table 2): a 16-wide embedding of the bytes,
    # a 3-wide conv of 64, then 64/128/256/512 stages of one unit (two 3-wide convs) each, the
    # length halved between stages; global average pooling replaces VDCNN's k-max pooling.
    return ResNet(
        BasicBlock,
        (1, 1, 1, 1),
        **{
            "num_classes": 2,
            "in_chans": 1,
            "channels": (64, 128, 256, 512),
            "stem_type": "cifar",
            "spatial_dims": 1,
            "vocab_size": 256,
            "embed_dim": 16,
            **kwargs,
        },
    )


@register_model(ResNet, task="sequence")
def resnet_tsc(**kwargs):
    return _tsc(**kwargs)


@register_model(ResNet, task="sequence")
def plain_tsc(**kwargs):
    return _tsc(**{"shortcut": "none", **kwargs})


@register_model(ResNet, task="sequence")
def resnet_text(**kwargs):
    return _text(**kwargs)


@register_model(ResNet, task="sequence")
def plain_text(**kwargs):
    return _text(**{"shortcut": "none", **kwargs})


__all__ = [
    n
    for n, f in list(globals().items())
    if callable(f) and getattr(f, "__module__", None) == __name__ and not n.startswith("_")
]
