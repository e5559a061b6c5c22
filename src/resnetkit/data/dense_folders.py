"""People's own dense data, read into memory:

- segmentation: ``DIR/{train,val,test}/images/NAME.png|jpg`` with ``DIR/<split>/masks/NAME.png``
  (one class index per pixel, 255 = ignore), and optionally ``DIR/classes.txt`` (one name per
  line, the background first);
- detection: COCO-format ``DIR/<split>.json`` with the images under ``DIR/<split>/`` (the JSON's
  ``file_name``), category ids mapped in order to labels 1..K (0 is the background).

Images are resized to ``image_size`` squared (masks nearest, boxes scaled), so batches stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import DatasetError
from .folder import IMAGE_EXTENSIONS
from .images import read_image
from .memory import compute_mean_std
from .scenes import IGNORE_INDEX, SceneDataset


def dense_folder_splits(root: Path) -> tuple[str, ...]:
    return tuple(s for s in ("train", "val", "test") if (root / s).is_dir() or (root / f"{s}.json").is_file())


def _fit(image: torch.Tensor, size: int) -> torch.Tensor:
    if tuple(image.shape[-2:]) == (size, size):
        return image
    x = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x[0].round().clamp(0, 255).to(torch.uint8)


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = compute_mean_std(images)
    return mean, tuple(max(s, 1e-3) for s in std)  # a flat channel must not divide by zero


def _mode(path: Path) -> str:
    with Image.open(path) as img:
        return "L" if img.mode in ("L", "I;16", "I", "1", "LA") else "RGB"


def load_mask_folder(root: Path, split: str, size: int) -> SceneDataset:
    folder = root / split
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{folder}: a segmentation split needs images/ and masks/ subfolders")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise DatasetError(f"{images_dir}: no {'/'.join(IMAGE_EXTENSIONS)} images")
    mode = _mode(paths[0])
    images, masks = [], []
    for path in paths:
        mask_path = masks_dir / f"{path.stem}.png"
        if not mask_path.is_file():
            raise DatasetError(f"{path}: no mask {mask_path}")
        image = read_image(path, mode)
        with Image.open(mask_path) as m:
            if m.mode not in ("L", "P", "I", "I;16"):
                raise DatasetError(f"{mask_path}: a mask must be a one-channel PNG of class indices, not {m.mode}")
            mask = torch.from_numpy(np.asarray(m, dtype=np.int64))
        if tuple(mask.shape) != tuple(image.shape[-2:]):
            raise DatasetError(f"{mask_path}: mask {tuple(mask.shape)} but image {tuple(image.shape[-2:])}")
        images.append(_fit(image, size))
        resized = F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
        masks.append(resized.clamp(0, 255).to(torch.uint8))
    stack, mask_stack = torch.stack(images), torch.stack(masks)
    classes = _classes(root, mask_stack)
    labelled = mask_stack[mask_stack != IGNORE_INDEX]
    if len(labelled) and int(labelled.max()) >= len(classes):
        raise DatasetError(
            f"{masks_dir}: mask value {int(labelled.max())} but {root / 'classes.txt'} names {len(classes)} classes"
        )
    mean, std = _stats(stack)
    empty = [torch.zeros(0, 4)] * len(paths)
    none = [torch.zeros(0, dtype=torch.int64)] * len(paths)
    return SceneDataset(
        stack, mask_stack, empty, none, none, [torch.zeros(0, 3, dtype=torch.int64)] * len(paths), classes, mean, std
    )


def _classes(root: Path, masks: torch.Tensor) -> list[str]:
    listing = root / "classes.txt"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(names) < 2:
            raise DatasetError(f"{listing}: needs at least two classes (the background first)")
        return names
    values = masks[masks != IGNORE_INDEX]
    top = int(values.max()) if len(values) else 1
    return ["background", *(f"class{c}" for c in range(1, max(top, 1) + 1))]


def load_coco_folder(root: Path, split: str, size: int) -> SceneDataset:
    listing = root / f"{split}.json"
    if not listing.is_file():
        raise DatasetError(f"{root}: no {split}.json (COCO-format annotations) for the {split} split")
    try:
        coco = json.loads(listing.read_text(encoding="utf-8"))
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        images_info = coco["images"]
        annotations = coco.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DatasetError(f"{listing}: not COCO-format annotations ({type(e).__name__}: {e})") from None
    label_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
    per_image: dict[int, list[dict]] = {info["id"]: [] for info in images_info}
    for a in annotations:
        if a.get("image_id") not in per_image or a.get("category_id") not in label_of:
            raise DatasetError(f"{listing}: annotation {a.get('id')} names an unknown image or category")
        per_image[a["image_id"]].append(a)
    if not images_info:
        raise DatasetError(f"{listing}: no images")
    mode = None
    images, boxes, labels = [], [], []
    for info in images_info:
        path = root / split / info["file_name"]
        if not path.is_file():
            raise DatasetError(f"{listing}: image {path} not found")
        mode = mode or _mode(path)
        image = read_image(path, mode)
        h, w = image.shape[-2:]
        rows = [a for a in per_image[info["id"]] if not a.get("iscrowd", 0)]
        b = torch.tensor([a["bbox"] for a in rows], dtype=torch.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]  # COCO's [x, y, width, height] to corners
        b *= torch.tensor([size / w, size / h, size / w, size / h])
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        images.append(_fit(image, size))
        boxes.append(b[keep])
        labels.append(torch.tensor([label_of[a["category_id"]] for a in rows], dtype=torch.int64)[keep])
    stack = torch.stack(images)
    mean, std = _stats(stack)
    n = len(images)
    classes = ["background", *(str(c.get("name", c["id"])) for c in categories)]
    masks = torch.zeros(n, 1, 1, dtype=torch.uint8)  # no masks: a detection dataset
    return SceneDataset(
        stack,
        masks,
        boxes,
        labels,
        [torch.zeros(0, dtype=torch.int64)] * n,
        [torch.zeros(0, 3, dtype=torch.int64)] * n,
        classes,
        mean,
        std,
    )
