"""Image files to the input a model expects: its channels, size and normalization, from its
record (``tasks.inputs``, where every tool that feeds a model reads them)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ..data import read_image
from ..tasks.inputs import Describable, InputSpec, fit, input_size, input_spec, normalize

__all__ = ["Describable", "InputSpec", "fit", "input_size", "input_spec", "load_images", "normalize"]


def load_images(paths: Sequence[str | os.PathLike[str]], model: Describable) -> torch.Tensor:
    """Normalized float images (N, C, H, W) for ``model``: converted to its channels, the shorter
    side resized to its input size and the centre cropped (as evaluation of image folders does)."""
    if not paths:
        raise ValueError("no images given")
    spec = input_spec(model)
    return torch.stack([normalize(fit(read_image(p, spec.mode, max(spec.image_size)), spec), spec) for p in paths])
