"""A frozen first convolution that whitens the image's patches, fitted to the training images.

airbench (Jordan 2024, arXiv:2404.00498, §3.2, after tysam's hlb-CIFAR10) starts its net with a
2x2 convolution whose filters are the eigenvectors of the training patches' covariance, each
divided by the square root of its eigenvalue and kept with both signs, and never trains it: the
next layers see decorrelated inputs of equal variance from the first step, and the first conv's
backward is never computed. Here the kernel is 3x3 with padding 1, so it replaces a stem's 3x3
conv and keeps its geometry: 2 * C * 9 channels out (18 for a grayscale image).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


class PatchWhitening(nn.Module):
    """``weight`` is a buffer (saved with the model, never given a gradient), zero until ``fit``."""

    weight: torch.Tensor

    def __init__(self, in_chans: int, kernel_size: int = 3, eps: float = 5e-4):
        super().__init__()
        # A conv's attribute names, so what reads a stem's first conv reads this one too.
        self.in_channels, self.kernel_size, self.eps = in_chans, kernel_size, eps
        self.out_channels = 2 * in_chans * kernel_size**2
        self.register_buffer("weight", torch.zeros(self.out_channels, in_chans, kernel_size, kernel_size))

    @property
    def fitted(self) -> bool:
        return bool(self.weight.any())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), padding=self.kernel_size // 2)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from (N, C, H, W) normalized training images: every k x k patch of
        them (no padding), their second moment's eigenvectors scaled by (eigenvalue + eps)^-1/2,
        largest first, then the same negated (so a max-pool or ReLU after keeps either sign)."""
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"whitening: expected (N, {self.in_channels}, H, W) images, got {tuple(images.shape)}")
        if not torch.isfinite(images).all():  # NaN filters would turn every later activation NaN
            raise ValueError("whitening: the training images hold NaN or infinite values")
        k = self.kernel_size
        patches = F.unfold(images.float(), k).transpose(1, 2).reshape(-1, self.in_channels * k * k)
        if len(patches) < patches.shape[1]:
            raise ValueError(f"whitening: {len(patches)} patches cannot fit {patches.shape[1]} dimensions")
        moment = patches.T.double() @ patches.double() / len(patches)
        values, vectors = torch.linalg.eigh(moment)  # ascending
        values, vectors = values.flip(0).clamp_min(0), vectors.flip(1)
        filters = (vectors / (values + self.eps).sqrt()).T.reshape(-1, self.in_channels, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, frozen"


def fit_whitening(model: nn.Module, batches: Iterable[torch.Tensor], max_images: int = 5000) -> bool:
    """Fit every ``PatchWhitening`` of ``model`` not yet fitted (a fresh model: one loaded from a
    checkpoint or weights keeps its filters) on up to ``max_images`` images, the first of
    ``batches``, read only when there is one to fit. Returns whether anything was fitted."""
    todo = [m for m in model.modules() if isinstance(m, PatchWhitening) and not m.fitted]
    if not todo:
        return False
    seen: list[torch.Tensor] = []
    count = 0
    for x in batches:
        seen.append(x[: max_images - count])
        count += len(seen[-1])
        if count >= max_images:
            break
    if not seen:
        raise ValueError("whitening: no training images to fit the stem's filters on")
    images = torch.cat(seen)
    for m in todo:
        m.fit(images.to(m.weight.device))
    return True
