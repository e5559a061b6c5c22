"""Pictures of dense predictions: a class mask blended over an image, boxes drawn with their
class and score. One palette, so a class has the same colour in every picture."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

# A fixed palette (tab10 after a black background): the same class has the same colour in
# every picture. Classes past it cycle.
PALETTE = [
    (0, 0, 0),
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def colour(c: int) -> tuple[int, int, int]:
    return PALETTE[c] if c < len(PALETTE) else PALETTE[1 + (c - 1) % (len(PALETTE) - 1)]


def to_rgb(image: torch.Tensor) -> Image.Image:
    """uint8 ``[C, H, W]`` (1 or 3 channels) as an RGB picture."""
    arr = image.permute(1, 2, 0).cpu().numpy()
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]))


def draw_mask(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.55) -> Image.Image:
    """``mask`` (class per pixel; 0 = background, left as it is) blended over ``image``."""
    base = np.asarray(to_rgb(image), dtype=np.float32)
    m = mask.cpu().numpy()
    colours = np.array([colour(c) for c in range(int(m.max()) + 1)], dtype=np.float32)
    painted = colours[m]
    on = (m > 0)[..., None]
    out = np.where(on, (1 - alpha) * base + alpha * painted, base)
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))


def draw_boxes(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor | None = None,
    names: Sequence[str] | None = None,
    scale: int = 1,
) -> Image.Image:
    """Boxes in the colour of their class, each captioned with its class (and score)."""
    picture = to_rgb(image)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture)
    for i, (box, label) in enumerate(zip(boxes.tolist(), labels.tolist(), strict=True)):
        x1, y1, x2, y2 = (v * scale for v in box)
        c = colour(int(label))
        # x2/y2 are exclusive; a box under a pixel wide is still drawn, as one pixel.
        draw.rectangle((x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=c, width=max(1, scale))
        text = names[int(label)] if names and int(label) < len(names) else str(int(label))
        if scores is not None:
            text += f" {float(scores[i]):.2f}"
        draw.text((x1 + 2, max(y1 - 11, 0)), text, fill=c)
    return picture
