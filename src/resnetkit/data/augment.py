"""Augmentation of a whole (N, C, H, W) batch at once, on any device, uint8 or float.

Random numbers are drawn on the CPU from one `torch.Generator` and only then moved to the
batch's device, so a seed gives the same augmentation on CPU and CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch

PAD_MODES = ("zeros", "reflect")
FLIP_MODES = ("random", "alternate")


@dataclass(frozen=True)
class AugmentConfig:
    """pad: pixels of padding before a random crop back to size (0: no crop); pad_mode: "zeros"
    or "reflect"; flip: horizontal flips, each image at random ("random") or, after a random
    first epoch, mirrored in every other one ("alternate", `alternate_flips`); erasing:
    probability of random erasing."""

    pad: int = 0
    pad_mode: str = "zeros"
    flip: bool = False
    flip_mode: str = "random"
    erasing: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.pad, int) or self.pad < 0:
            raise ValueError(f"pad must be an int >= 0, got {self.pad!r}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {self.pad_mode!r}")
        if self.flip_mode not in FLIP_MODES:
            raise ValueError(f"flip_mode must be one of {', '.join(FLIP_MODES)}, got {self.flip_mode!r}")
        if not 0.0 <= self.erasing <= 1.0:
            raise ValueError(f"erasing is a probability in [0, 1], got {self.erasing}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown augmentation key(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def augment_batch(
    x: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator | None = None,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Crop, then flip, then erase, as `config` asks. With ``flip_mode="alternate"``, `flips` says
    which samples to mirror (`alternate_flips`: it needs each sample's index and the epoch)."""
    if config.pad:
        x = random_crop(x, config.pad, config.pad_mode, generator)
    if config.flip and config.flip_mode == "alternate":
        if flips is None:
            raise ValueError("alternate flips need each sample's flips (alternate_flips), got none")
        x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(-1), x)
    elif config.flip:
        x = random_flip(x, 0.5, generator)
    if config.erasing:
        x = random_erasing(x, config.erasing, generator=generator)
    return x


def random_crop(
    x: torch.Tensor, pad: int, mode: str = "zeros", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad each side by `pad` and crop back to (H, W) at an independent offset per sample.

    The crop is a gather through per-sample pixel indices, so no padded copy is made.
    """
    n, c, h, w = x.shape
    if pad == 0:
        return x
    if mode == "reflect" and pad >= min(h, w):
        raise ValueError(f"reflect padding of {pad} needs images larger than {pad}, got {h}x{w}")
    shift = torch.randint(-pad, pad + 1, (2, n), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device) + shift[0, :, None]
    cols = torch.arange(w, device=x.device) + shift[1, :, None]
    if mode == "reflect":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
    else:
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    index = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
    if mode != "reflect":
        out.masked_fill_(~inside[:, None], 0)
    return out


def random_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each sample left-right with probability `p`."""
    flip = (torch.rand(len(x), generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def alternate_flips(first: torch.Tensor, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Which of the samples `index` to mirror in `epoch`: `first[index]` (a random bool per sample
    of the dataset, drawn once) in even epochs, its negation in odd ones. Alternating flips
    (Jordan 2024, arXiv:2404.00498 section 3.6): with random flips two epochs in a row show an
    image the same way round half the time; alternated, every pair of epochs shows both sides,
    which airbench found worth extra epochs in short CIFAR-10 runs (on fashion-mnist-fast it
    scored level: benchmarks/README.md, phases v11 and v12)."""
    return first[index] ^ bool(epoch % 2)


def random_erasing(
    x: torch.Tensor,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017, arXiv:1708.04896): with probability `p`, fill one
    rectangle of `scale` of the area and aspect `ratio` with `value` (0 is the mean once normalized).

    As in the paper a sample draws boxes until one fits; here `attempts` are drawn for every sample
    at once and the first that fits is used (none fits: the sample is left as is).
    """
    n, _, h, w = x.shape
    apply = torch.rand(n, generator=generator) < p
    area = h * w * torch.empty(n, attempts).uniform_(*scale, generator=generator)
    aspect = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator).exp()
    heights = (area * aspect).sqrt().round().long()
    widths = (area / aspect).sqrt().round().long()
    fits = (heights > 0) & (heights < h) & (widths > 0) & (widths < w)
    first = fits.long().argmax(1, keepdim=True)
    apply &= fits.any(1)
    eh, ew = heights.gather(1, first).squeeze(1), widths.gather(1, first).squeeze(1)
    top = (torch.rand(n, generator=generator) * (h - eh + 1)).long()
    left = (torch.rand(n, generator=generator) * (w - ew + 1)).long()
    top, eh, left, ew, apply = (t.to(x.device) for t in (top, eh, left, ew, apply))
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    return x.masked_fill(mask[:, None], value)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror indices in [-size + 1, 2 * size - 2] into [0, size - 1], edge not repeated."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)
