"""Dense prediction on image files: a segmentation model's class mask, or a detector's boxes,
drawn over each image and written as a PNG beside a JSON-able summary."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..artifacts import atomic_write
from ..data.images import read_image
from ..models import model_task

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
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=c, width=max(1, scale))
        text = names[int(label)] if names and int(label) < len(names) else str(int(label))
        if scores is not None:
            text += f" {float(scores[i]):.2f}"
        draw.text((x1 + 2, max(y1 - 11, 0)), text, fill=c)
    return picture


@dataclass
class DensePrediction:
    image: str
    picture: str  # the PNG written
    classes: dict[str, float] = field(default_factory=dict)  # segmentation: share of pixels per class
    boxes: list[dict[str, Any]] = field(default_factory=list)  # detection: box, label, name, score

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "picture": self.picture}
        out |= {"classes": self.classes} if self.classes else {"boxes": self.boxes}
        return out


def dense_task(model: Any) -> str | None:
    """``"segmentation"`` or ``"detection"`` for a dense model, None for a classifier."""
    name = (getattr(model, "model_cfg", None) or {}).get("name")
    task = model_task(name) if name else None
    return task if task in ("segmentation", "detection") else None


@torch.no_grad()
def predict_dense(
    model: Any, paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], min_score: float = 0.3
) -> list[DensePrediction]:
    """Each image at its own size through ``model``; one PNG per image in ``out_dir``
    (``<stem>.png``) with the mask or the boxes (those scoring ``min_score`` or more) drawn on it."""
    task = dense_task(model)
    if task is None:
        raise ValueError("predict_dense needs a segmentation or detection model")
    meta = getattr(model, "pretrained_cfg", {}) or {}
    names = meta.get("classes")
    mode = "L" if model.in_chans == 1 else "RGB"
    device = next(model.parameters()).device
    out = []
    for path in paths:
        image = read_image(path, mode)
        target = Path(out_dir) / f"{Path(path).stem}.png"
        x = image.float().to(device) / 255
        if task == "segmentation":
            mean = torch.tensor(meta.get("mean", [0.5] * model.in_chans), device=device).view(-1, 1, 1)
            std = torch.tensor(meta.get("std", [0.25] * model.in_chans), device=device).view(-1, 1, 1)
            mask = model(((x - mean) / std)[None])["out"].argmax(1)[0].cpu()
            picture = draw_mask(image, mask)
            counts = torch.bincount(mask.flatten(), minlength=model.num_classes).double() / mask.numel()
            shares = {(names[c] if names else str(c)): float(v) for c, v in enumerate(counts.tolist()) if v > 0}
            pred = DensePrediction(str(path), str(target), classes=shares)
        else:
            det = model([x])[0]
            keep = det["scores"] >= min_score
            boxes, labels, scores = det["boxes"][keep].cpu(), det["labels"][keep].cpu(), det["scores"][keep].cpu()
            picture = draw_boxes(image, boxes, labels, scores, names)
            found = [
                {
                    "box": [round(v, 1) for v in b],
                    "label": int(c),
                    "name": names[int(c)] if names else str(int(c)),
                    "score": round(float(s), 4),
                }
                for b, c, s in zip(boxes.tolist(), labels.tolist(), scores.tolist(), strict=True)
            ]
            pred = DensePrediction(str(path), str(target), boxes=found)
        _save_png(picture, target)
        out.append(pred)
    return out


def _save_png(picture: Image.Image, path: Path) -> None:
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def evaluate_dense(
    model: Any,
    split: str = "test",
    data_dir: str | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    source: str = "model",
) -> dict[str, Any]:
    """mIoU and pixel accuracy (segmentation) or COCO mAP (detection) of a dense model on the
    split of the data it was trained on: the garment scenes are drawn again from the run's own
    scene settings and seed, so the test scenes are the ones its training measured."""
    from ..data import make_streaming_loader
    from ..data.dense import SCENES, BoxCollate, MaskCollate, load_dense_dataset
    from ..data.scenes import SceneSpec
    from ..tasks import evaluate_detection, evaluate_segmentation

    task = dense_task(model)
    if task is None:
        raise ValueError(f"{source}: not a segmentation or detection model")
    meta = getattr(model, "pretrained_cfg", {}) or {}
    config = (meta.get("training") or {}).get("config") or {}
    spec = SceneSpec(**(config.get("data") or {}).get("scenes", {}))
    name = meta.get("name", SCENES)
    target = "mask" if task == "segmentation" else "boxes"
    size = int((config.get("data") or {}).get("image_size", 224))  # image folders: the size it trained at
    ds = load_dense_dataset(name, split, data_dir, True, spec, int(config.get("seed", 0)), target, size)
    collate = MaskCollate(ds.mean, ds.std) if task == "segmentation" else BoxCollate()
    loader = make_streaming_loader(ds, batch_size, even_shards=False, collate_fn=collate)
    dev = torch.device(device)
    model = model.to(dev)
    if task == "segmentation":
        result: Any = evaluate_segmentation(model, loader, model.num_classes, dev)
    else:
        result = evaluate_detection(model, loader, model.num_classes, dev)
    return {"source": source, "data": name, "split": split, "task": task, **result.as_dict(list(ds.classes))}
