"""Stems: what turns the image (or the sequence) into the first stage's input."""

from __future__ import annotations

import torch
from torch import nn

from .layers import LayerFn, conv3x3
from .ops import OPS_2D, Ops
from .whitening import PatchWhitening

STEMS = ("imagenet", "deep", "cifar", "pool", "pool_early", "whiten", "none")


class ByteEmbedding(nn.Embedding):
    """Each byte of a text as a learned vector (VDCNN, Conneau et al. 2017, arXiv:1606.01781, §3:
    a character embedding of 16 in front of the convolutions), so a text is a 1-D sequence of
    ``dim`` channels like any series. Takes (N, 1, L) byte values 0..vocab_size-1, and
    ``vocab_size`` itself where a text has ended (the padding symbol: a zero vector, no gradient)."""

    in_chans = 1

    def __init__(self, vocab_size: int, dim: int):
        super().__init__(vocab_size + 1, dim, padding_idx=vocab_size)
        self.vocab_size = vocab_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.squeeze(1).long()).transpose(1, 2)


def stem_layers(
    stem_type: str,
    in_chans: int,
    out_chs: int,
    stem_width: int,
    norm_layer: LayerFn | None,
    act_layer: LayerFn,
    ops: Ops = OPS_2D,
    vocab_size: int | None = None,
    embed_dim: int = 16,
) -> tuple[dict[str, nn.Module], int, dict]:
    """Return (children in forward order, stride before the first stage, the stem's feature_info entry).

    "imagenet": 7x7/2 conv + 3x3/2 max-pool (He et al. 2015, Table 1).
    "deep": three 3x3 convs instead of the 7x7, the "c" tweak of Bag of Tricks (arXiv:1812.01187,
    Fig. 2b), laid out as timm's ``conv1.{0,1,3,4,6}`` so its checkpoints load.
    "cifar": one 3x3/1 conv, no pooling (He et al. 2015, §4.2).
    "pool": the cifar stem, then a 2x2 max-pool: the full-resolution conv sees every pixel and the
    stages run at half the resolution, a quarter of the cost (the conv-then-pool downsampling of
    Page's ResNet-9 and airbench, which train small images fast).
    "pool_early": the pool stem with the pool straight after the conv, then norm and act, as
    airbench's and hlb-CIFAR10's conv groups order them: the norm and act (memory-bound, a third
    of a small net's step at full resolution) run on a quarter of the pixels. Not the same function
    as "pool" (a max of normalized values is not the normalized max where a scale is negative).
    "whiten": the pool_early stem with its conv a frozen 3x3 patch-whitening conv fitted to the
    training images before the first step (airbench's first layer: ``whitening.PatchWhitening``),
    2 * in_chans * 9 channels wide whatever ``out_chs`` says; the first stage projects them to its own.
    "none": the first unit reads the input itself (Wang et al. 2017's time-series ResNet).
    ``norm_layer=None`` (pre-activation nets) leaves out the stem's norm and act: the first unit
    normalizes its own input. ``vocab_size``: a ``ByteEmbedding`` (``embed``) comes first.
    """
    if stem_type not in STEMS:
        raise ValueError(f"stem_type={stem_type!r}: expected one of {', '.join(STEMS)}")
    children: dict[str, nn.Module] = {}
    if vocab_size is not None:
        children["embed"] = ByteEmbedding(vocab_size, embed_dim)
        in_chans = embed_dim
    if stem_type == "none":
        if not children:
            children["stem"] = nn.Identity()  # feature level 0 is the input itself
        return children, 1, {"num_chs": in_chans, "reduction": 1, "module": next(reversed(children))}
    if stem_type == "deep":
        children["conv1"] = nn.Sequential(
            conv3x3(in_chans, stem_width, stride=2, ops=ops),
            norm_layer(stem_width) if norm_layer else nn.Identity(),
            act_layer(),
            conv3x3(stem_width, stem_width, ops=ops),
            norm_layer(stem_width) if norm_layer else nn.Identity(),
            act_layer(),
            conv3x3(stem_width, out_chs, ops=ops),
        )
    elif stem_type == "whiten":
        if ops.dims != 2:
            raise ValueError("stem_type='whiten' is for images (spatial_dims=2)")
        whitening = PatchWhitening(in_chans)
        children["conv1"], out_chs = whitening, whitening.out_channels
    elif stem_type == "imagenet":
        children["conv1"] = ops.conv(in_chans, out_chs, 7, stride=2, padding=3, bias=False)
    else:
        children["conv1"] = conv3x3(in_chans, out_chs, ops=ops)
    if stem_type in ("pool_early", "whiten"):  # the only full-resolution output is the conv's
        children["maxpool"] = ops.max_pool(2, stride=2)
        if norm_layer is not None:
            children["bn1"], children["act1"] = norm_layer(out_chs), act_layer()
        return children, 2, {"num_chs": out_chs, "reduction": 1, "module": "conv1"}
    feature = "conv1"
    if norm_layer is not None:
        children["bn1"] = norm_layer(out_chs)
        children["act1"] = act_layer()
        feature = "act1"
    if stem_type == "cifar":
        return children, 1, {"num_chs": out_chs, "reduction": 1, "module": feature}
    if stem_type == "pool":
        children["maxpool"] = ops.max_pool(2, stride=2)
        return children, 2, {"num_chs": out_chs, "reduction": 1, "module": feature}
    children["maxpool"] = ops.max_pool(3, stride=2, padding=1)
    return children, 4, {"num_chs": out_chs, "reduction": 2, "module": feature}
