"""Anchors: the reference boxes a dense detector scores and regresses at every feature location."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class AnchorGenerator(nn.Module):
    """``sizes[i]`` and ``aspect_ratios[i]`` (height/width) for feature level ``i``. At each location
    the anchors are centred on the location's top-left pixel corner times the stride, ordered
    ratio-major then size, as torchvision lays them out, so its heads' channels mean the same."""

    def __init__(self, sizes: Sequence[Sequence[int]], aspect_ratios: Sequence[Sequence[float]]):
        super().__init__()
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"{len(sizes)} anchor size groups but {len(aspect_ratios)} aspect-ratio groups")
        self.sizes = [tuple(s) for s in sizes]
        self.aspect_ratios = [tuple(r) for r in aspect_ratios]
        self.cell_anchors = [self._cell(s, r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    @staticmethod
    def _cell(sizes: Sequence[int], ratios: Sequence[float]) -> torch.Tensor:
        scales = torch.as_tensor(sizes, dtype=torch.float32)
        h_ratios = torch.sqrt(torch.as_tensor(ratios, dtype=torch.float32))
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    def forward(self, image_size: tuple[int, int], features: Sequence[torch.Tensor]) -> torch.Tensor:
        """All anchors of one (padded) image size, level after level: ``[sum(H*W*A), 4]``."""
        if len(features) != len(self.cell_anchors):
            raise ValueError(f"{len(features)} feature levels but anchors for {len(self.cell_anchors)}")
        device = features[0].device
        out = []
        for feature, cell in zip(features, self.cell_anchors, strict=True):
            h, w = feature.shape[-2:]
            stride_y, stride_x = image_size[0] // h, image_size[1] // w
            ys = torch.arange(h, dtype=torch.float32, device=device) * stride_y
            xs = torch.arange(w, dtype=torch.float32, device=device) * stride_x
            y, x = torch.meshgrid(ys, xs, indexing="ij")
            shifts = torch.stack((x.reshape(-1), y.reshape(-1), x.reshape(-1), y.reshape(-1)), dim=1)
            out.append((shifts[:, None, :] + cell.to(device)[None, :, :]).reshape(-1, 4))
        return torch.cat(out)
