"""Stems: what turns the image into the first stage's input."""

from __future__ import annotations

from torch import nn

from .layers import LayerFn, conv3x3

STEMS = ("imagenet", "deep", "cifar")


def stem_layers(
    stem_type: str,
    in_chans: int,
    out_chs: int,
    stem_width: int,
    norm_layer: LayerFn | None,
    act_layer: LayerFn,
) -> tuple[dict[str, nn.Module], int, dict]:
    """Return (children in forward order, stride before the first stage, the stem's feature_info entry).

    "imagenet": 7x7/2 conv + 3x3/2 max-pool (He et al. 2015, Table 1).
    "deep": three 3x3 convs instead of the 7x7, the "c" tweak of Bag of Tricks (arXiv:1812.01187,
    Fig. 2b), laid out as timm's ``conv1.{0,1,3,4,6}`` so its checkpoints load.
    "cifar": one 3x3/1 conv, no pooling (He et al. 2015, §4.2).
    ``norm_layer=None`` (pre-activation nets) leaves out the stem's norm and act: the first unit
    normalizes its own input.
    """
    if stem_type not in STEMS:
        raise ValueError(f"stem_type={stem_type!r}: expected one of {', '.join(STEMS)}")
    children: dict[str, nn.Module] = {}
    if stem_type == "deep":
        children["conv1"] = nn.Sequential(
            conv3x3(in_chans, stem_width, stride=2),
            norm_layer(stem_width) if norm_layer else nn.Identity(),
            act_layer(),
            conv3x3(stem_width, stem_width),
            norm_layer(stem_width) if norm_layer else nn.Identity(),
            act_layer(),
            conv3x3(stem_width, out_chs),
        )
    elif stem_type == "imagenet":
        children["conv1"] = nn.Conv2d(in_chans, out_chs, 7, stride=2, padding=3, bias=False)
    else:
        children["conv1"] = conv3x3(in_chans, out_chs)
    feature = "conv1"
    if norm_layer is not None:
        children["bn1"] = norm_layer(out_chs)
        children["act1"] = act_layer()
        feature = "act1"
    if stem_type == "cifar":
        return children, 1, {"num_chs": out_chs, "reduction": 1, "module": feature}
    children["maxpool"] = nn.MaxPool2d(3, stride=2, padding=1)
    return children, 4, {"num_chs": out_chs, "reduction": 2, "module": feature}
