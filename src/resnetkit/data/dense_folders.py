"""People's own dense data, read into memory:

- segmentation: ``DIR/{train,val,test}/images/NAME.png|jpg`` with ``DIR/<split>/masks/NAME.png``
  (one class index per pixel, 8- or 16-bit, 255 = ignore), and optionally ``DIR/classes.txt`` (one
  name per line, the background first, at most 255 classes). Every mask value is a class of the
  list or 255, else an error names the mask and the value (nothing is clamped). Without
  ``classes.txt`` the classes are the values the train split's masks hold, 0..K: a value missing
  between them (masks of 0, 1 and 200) is an error that asks for ``classes.txt``, as is a val or
  test mask value past K.
- detection: COCO-format ``DIR/<split>.json`` with the images under ``DIR/<split>/`` (the JSON's
  ``file_name``: a relative path inside that folder, no ``..``; symlinks are followed). The
  category ids of ``train.json`` are mapped in order to labels 1..K (0 is the background), and
  every split uses train's mapping: a category train does not have is an error. A box must be
  finite, of positive width and height, and overlap its image, else an error names its annotation
  id; a box that reaches past its image's edge is clipped to it (rule), and how many were is logged.

Images are resized to ``image_size`` squared (masks nearest, boxes scaled), so batches stack."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .coco import CocoBox, check_shared, read_coco
from .errors import DatasetError
from .folder import IMAGE_EXTENSIONS
from .images import image_mode, read_image, read_mask
from .memory import compute_mean_std
from .scenes import IGNORE_INDEX, SceneDataset

log = logging.getLogger(__name__)

MAX_CLASSES = IGNORE_INDEX  # masks are stored as uint8, and 255 is the ignore index
_MAX_LISTING_BYTES = 1 << 20  # classes.txt
_AT_MOST = f"a mask class is at most {MAX_CLASSES - 1} (255 = ignore): fix the mask"


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
    return "L" if image_mode(path) in ("L", "I;16", "I", "1", "LA") else "RGB"


# ---- Segmentation: images and PNG masks -------------------------------------------------------------


def _pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    folder = root / split
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{folder}: a segmentation split needs images/ and masks/ subfolders")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise DatasetError(f"{images_dir}: no {'/'.join(IMAGE_EXTENSIONS)} images")
    pairs = [(path, masks_dir / f"{path.stem}.png") for path in paths]
    for path, mask_path in pairs:
        if not mask_path.is_file():
            raise DatasetError(f"{path}: no mask {mask_path}")
    return pairs


def _values(mask: np.ndarray) -> np.ndarray:
    """The distinct values of a mask, sorted (counted in one pass where they are small)."""
    if mask.size and mask.min() >= 0 and mask.max() < 1 << 16:
        return np.flatnonzero(np.bincount(mask.ravel()))
    return np.unique(mask)


def _checked_mask(mask_path: Path, classes: int | None, why: str) -> tuple[np.ndarray, np.ndarray]:
    """A mask and its values, each a class index below ``classes`` (None: below MAX_CLASSES) or
    the ignore index; ``why`` says where the class count comes from and what to do."""
    mask = read_mask(mask_path)
    values = _values(mask)
    limit = MAX_CLASSES if classes is None else classes
    bad = values[(values != IGNORE_INDEX) & ((values < 0) | (values >= limit))]
    if len(bad):
        shown = ", ".join(str(v) for v in bad[:3].tolist())
        raise DatasetError(f"{mask_path}: mask value {shown}, but {why}")
    return mask, values


def load_mask_folder(root: Path, split: str, size: int) -> SceneDataset:
    pairs = _pairs(root, split)
    classes = _listed_classes(root)
    if classes is not None:
        why = f"{root / 'classes.txt'} names {len(classes)} classes (0..{len(classes) - 1}; 255 = ignore)"
        why += ": fix the mask or the list"
    elif split != "train":
        classes = _classes_present(root, _split_values(root, "train"))
        why = (
            f"without classes.txt the classes are the train masks' values, 0..{len(classes) - 1} (255 = ignore): "
            f"fix the mask, or write {root / 'classes.txt'} naming every class"
        )
    else:
        why = _AT_MOST
    mode = _mode(pairs[0][0])
    images, masks, present = [], [], set()
    for path, mask_path in pairs:
        image = read_image(path, mode)
        mask, values = _checked_mask(mask_path, None if classes is None else len(classes), why)
        if tuple(mask.shape) != tuple(image.shape[-2:]):
            raise DatasetError(f"{mask_path}: mask {tuple(mask.shape)} but image {tuple(image.shape[-2:])}")
        present.update(values.tolist())
        images.append(_fit(image, size))
        small = torch.from_numpy(mask.astype(np.uint8))[None, None]  # every value checked to fit
        masks.append(F.interpolate(small, size=(size, size), mode="nearest")[0, 0])
    if split == "train" and not present - {IGNORE_INDEX}:
        raise DatasetError(
            f"{root / split / 'masks'}: every pixel of every mask is the ignore value {IGNORE_INDEX}: nothing to learn "
            "from; label the masks (0 = background, 1.. the classes)"
        )
    if classes is None:
        classes = _classes_present(root, present)
    stack, mask_stack = torch.stack(images), torch.stack(masks)
    mean, std = _stats(stack)
    n = len(pairs)
    empty = [torch.zeros(0, 4)] * n
    none = [torch.zeros(0, dtype=torch.int64)] * n
    return SceneDataset(
        stack, mask_stack, empty, none, none, [torch.zeros(0, 3, dtype=torch.int64)] * n, classes, mean, std
    )


def _listed_classes(root: Path) -> list[str] | None:
    listing = root / "classes.txt"
    if not listing.is_file():
        return None
    if listing.stat().st_size > _MAX_LISTING_BYTES:
        raise DatasetError(f"{listing}: larger than {_MAX_LISTING_BYTES:,} bytes: not a list of class names")
    try:
        text = listing.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"{listing}: not UTF-8 text (byte {e.start}); save it as UTF-8, one class per line"
        ) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) < 2:
        raise DatasetError(f"{listing}: needs at least two classes (the background first)")
    if len(names) > MAX_CLASSES:
        raise DatasetError(
            f"{listing}: {len(names)} classes, but a mask holds at most {MAX_CLASSES} "
            f"(0..{MAX_CLASSES - 1}; 255 = ignore)"
        )
    return names


def _split_values(root: Path, split: str) -> set[int]:
    """The values the masks of ``split`` hold (each checked as a class index or the ignore index)."""
    present: set[int] = set()
    for _, mask_path in _pairs(root, split):
        present.update(_checked_mask(mask_path, None, _AT_MOST)[1].tolist())
    return present


def _classes_present(root: Path, present: set[int]) -> list[str]:
    """Classes 0..K from the train split's mask values, without classes.txt: every value from 1
    to the largest must occur (a gap is a stray value, or classes that need their names)."""
    values = sorted(present - {IGNORE_INDEX})
    top = values[-1] if values else 0
    fix = f"write {root / 'classes.txt'}, one class name per line (the background first)"
    if top == 0:
        raise DatasetError(f"{root / 'train' / 'masks'}: the masks hold no class but the background (0); {fix}")
    missing = sorted(set(range(1, top + 1)) - set(values))
    if missing:
        shown = ", ".join(str(v) for v in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DatasetError(
            f"{root / 'train' / 'masks'}: the masks hold values up to {top} but not {shown}; without classes.txt the "
            f"classes are the values the masks hold, 0..K with no gap: fix the stray values or {fix}"
        )
    return ["background", *(f"class{c}" for c in range(1, top + 1))]


# ---- Detection: COCO JSON and images ---------------------------------------------------------------


def load_coco_folder(root: Path, split: str, size: int) -> SceneDataset:
    coco = read_coco(root, split)
    categories = coco.categories
    if split != "train":  # every split is labelled as train is
        categories = read_coco(root, "train").categories
        check_shared(coco, categories, root / "train.json")
    label_of = {c: i + 1 for i, c in enumerate(sorted(categories))}
    mode = None
    images, boxes, labels = [], [], []
    clipped = total = 0
    for image_id, file_name in coco.images:
        path = root / split / file_name
        if not path.is_file():
            raise DatasetError(f"{coco.listing}: image {image_id}: {path} not found")
        mode = mode or _mode(path)
        image = read_image(path, mode)
        h, w = image.shape[-2:]
        rows = [box for box in coco.boxes[image_id] if not box.crowd]
        corners = torch.tensor([_corners(coco.listing, box, w, h, path) for box in rows], dtype=torch.float64)
        corners = corners.reshape(-1, 4)
        inside = corners.clone()
        inside[:, 0::2] = inside[:, 0::2].clamp(0, w)
        inside[:, 1::2] = inside[:, 1::2].clamp(0, h)
        clipped += int((inside != corners).any(dim=1).sum())
        total += len(rows)
        inside *= torch.tensor([size / w, size / h, size / w, size / h], dtype=torch.float64)
        images.append(_fit(image, size))
        boxes.append(inside.float())
        labels.append(torch.tensor([label_of[box.category] for box in rows], dtype=torch.int64))
    if clipped:
        log.info("%s: %d of %d boxes reach past their image's edge; clipped to it", coco.listing, clipped, total)
    stack = torch.stack(images)
    mean, std = _stats(stack)
    n = len(images)
    classes = ["background", *(categories[c] for c in sorted(categories))]
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


def _corners(listing: Path, box: CocoBox, w: int, h: int, path: Path) -> tuple[float, float, float, float]:
    x, y, bw, bh = box.bbox
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        raise DatasetError(
            f"{listing}: annotation {box.annotation}: bbox {list(box.bbox)} lies outside its image "
            f"{path.name} ({w}x{h}); fix or remove it"
        )
    return x, y, x + bw, y + bh
