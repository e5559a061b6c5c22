"""A Grad-CAM heat map drawn over its image as an RGB array: what a person looks at (the web
page, ``/v1/explain``), without pyplot."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def heatmap_overlay(image: torch.Tensor, heatmap: torch.Tensor, size: int = 224, alpha: float = 0.45) -> np.ndarray:
    """``image`` uint8 (C, H, W), ``heatmap`` (H, W) in [0, 1]: an (S, S', 3) uint8 array at
    ``size`` pixels on the longer side, the image upscaled without smoothing (its pixels stay
    visible) and the map bilinearly, coloured with matplotlib's ``jet``."""
    from matplotlib import colormaps

    h, w = image.shape[-2:]
    scale = size / max(h, w)
    out = (max(1, round(h * scale)), max(1, round(w * scale)))
    rgb = image.expand(3, h, w) if image.shape[0] == 1 else image[:3]
    base = F.interpolate(rgb[None].float(), size=out, mode="nearest")[0].permute(1, 2, 0).numpy()
    heat = F.interpolate(heatmap[None, None].float(), size=out, mode="bilinear", align_corners=False)[0, 0]
    colour = colormaps["jet"](heat.clamp(0, 1).numpy())[..., :3] * 255
    return np.clip((1 - alpha) * base + alpha * colour, 0, 255).astype(np.uint8)
