"""Probe inputs: a random labelled batch and a line of images through input space."""

from __future__ import annotations

import torch
from torch import nn

from ..models import ResNetBase


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def in_chans(model: ResNetBase) -> int:
    """Input channels, read from the first conv that the model names (``model.first_conv``)."""
    return model.in_chans


def random_batch(
    model: ResNetBase,
    batch_size: int,
    image_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """N(0, 1) images and uniform random labels, shaped for ``model``."""
    images = torch.randn(batch_size, in_chans(model), image_size, image_size, generator=generator)
    labels = torch.randint(0, model.num_classes, (batch_size,), generator=generator)
    return images, labels


def input_line(start: torch.Tensor, end: torch.Tensor, n_points: int, span: float = 1.0) -> torch.Tensor:
    """``n_points`` images evenly spaced from ``start`` towards ``end``, covering ``span`` of the way
    (a 1-D slice of input space, as the 1-D inputs of Balduzzi et al. 2017, arXiv:1702.08591, §2)."""
    if start.shape != end.shape:
        raise ValueError(f"line endpoints differ in shape: {tuple(start.shape)} vs {tuple(end.shape)}")
    if n_points < 2:
        raise ValueError(f"n_points={n_points}: a line needs at least 2 points")
    t = torch.linspace(0.0, span, n_points, dtype=start.dtype).view(-1, *([1] * start.ndim))
    return start + t * (end - start)
