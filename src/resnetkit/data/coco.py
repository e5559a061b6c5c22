"""COCO-format annotations (https://cocodataset.org/#format-data) read for training: the JSON
checked for everything training uses, each problem one line naming the file and the image,
annotation or category (nothing else of the format is read):

- ``images``: a list of objects with a unique ``id`` and a ``file_name``, a relative path inside
  the split's folder (no absolute path, no ``..``);
- ``categories``: a non-empty list of objects with a unique integer ``id`` (and a ``name``);
- ``annotations``: objects with an ``image_id`` and ``category_id`` among those, and a ``bbox`` of 4
  finite numbers ``[x, y, width, height]`` with positive width and height (``iscrowd`` optional).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .errors import DatasetError


@dataclass(frozen=True)
class CocoBox:
    """One annotation's box, checked: finite, positive width and height."""

    annotation: Any  # its id, as errors name it
    bbox: tuple[float, float, float, float]  # COCO's x, y, width, height
    category: int
    crowd: bool


@dataclass(frozen=True)
class CocoSplit:
    """What training reads of one split's JSON."""

    listing: Path
    categories: dict[int, str]  # id -> name
    images: list[tuple[Any, str]]  # (id, file_name)
    boxes: dict[Any, list[CocoBox]]  # image id -> its boxes


def check_shared(coco: CocoSplit, train: dict[int, str], train_listing: Path) -> None:
    """Every category of ``coco`` is train's, by id and name: the splits share train's labels."""
    for category, name in sorted(coco.categories.items()):
        if category not in train:
            raise DatasetError(
                f"{coco.listing}: category {category} ({name!r}) is not among {train_listing}'s categories, "
                "so a model trained on train cannot predict it; give every split train's categories"
            )
        if name != train[category]:
            raise DatasetError(
                f"{coco.listing}: category {category} is {name!r} here but {train[category]!r} in {train_listing}; "
                "give every split train's categories"
            )


def read_coco(root: Path, split: str) -> CocoSplit:
    """A split's COCO JSON, checked for what training uses; any problem is one line naming it."""
    listing = root / f"{split}.json"
    if not listing.is_file():
        raise DatasetError(f"{root}: no {split}.json (COCO-format annotations) for the {split} split")
    coco = _read_json(listing)
    if not isinstance(coco, dict):
        raise DatasetError(f"{listing}: not COCO-format annotations (a JSON object of images, annotations, categories)")
    categories = _categories(listing, coco.get("categories"))
    images = _images(listing, coco.get("images"), root / split)
    boxes: dict[Any, list[CocoBox]] = {image_id: [] for image_id, _ in images}
    annotations = coco.get("annotations", [])
    if not isinstance(annotations, list):
        raise DatasetError(f"{listing}: 'annotations' must be a list, got {type(annotations).__name__}")
    for i, a in enumerate(annotations):
        box = _box(listing, i, a, categories)
        if a["image_id"] not in boxes:
            raise DatasetError(
                f"{listing}: annotation {box.annotation} names image {_short(a['image_id'])}, not among images"
            )
        boxes[a["image_id"]].append(box)
    return CocoSplit(listing, categories, images, boxes)


def _read_json(listing: Path) -> Any:
    try:
        text = listing.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{listing}: not UTF-8 (byte {e.start}); save the JSON as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{listing}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise DatasetError(f"{listing}: nested deeper than Python reads: not COCO-format annotations") from None
    except ValueError as e:  # an integer of thousands of digits
        raise DatasetError(f"{listing}: a value that cannot be read ({' '.join(str(e).split())})") from None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _categories(listing: Path, categories: Any) -> dict[int, str]:
    if not isinstance(categories, list) or not categories:
        raise DatasetError(
            f"{listing}: 'categories' must be a non-empty list of {{id, name}} objects, got {_kind(categories)}"
        )
    out: dict[int, str] = {}
    for i, c in enumerate(categories):
        if not isinstance(c, dict) or not _is_id(c.get("id")):
            raise DatasetError(f"{listing}: categories[{i}] needs an integer 'id', got {_short(c)}")
        if c["id"] in out:
            raise DatasetError(f"{listing}: category id {c['id']} appears twice")
        name = c.get("name", str(c["id"]))
        if not isinstance(name, str):
            raise DatasetError(f"{listing}: category {c['id']}: 'name' must be a string, got {_short(name)}")
        out[c["id"]] = name
    return out


def _images(listing: Path, images: Any, folder: Path) -> list[tuple[Any, str]]:
    if not isinstance(images, list):
        raise DatasetError(f"{listing}: 'images' must be a list of {{id, file_name}} objects, got {_kind(images)}")
    if not images:
        raise DatasetError(f"{listing}: no images")
    out, seen = [], set()
    for i, info in enumerate(images):
        if not isinstance(info, dict) or not (_is_id(info.get("id")) or isinstance(info.get("id"), str)):
            raise DatasetError(f"{listing}: images[{i}] needs an 'id' (an integer), got {_short(info)}")
        image_id, name = info["id"], info.get("file_name")
        if image_id in seen:
            raise DatasetError(f"{listing}: image id {image_id!r} appears twice")
        seen.add(image_id)
        if not isinstance(name, str) or not name or "\0" in name:
            raise DatasetError(f"{listing}: image {image_id!r}: 'file_name' must be a file's path, got {_short(name)}")
        if any(p.is_absolute() or p.drive or ".." in p.parts for p in (PurePosixPath(name), PureWindowsPath(name))):
            raise DatasetError(
                f"{listing}: image {image_id!r}: file_name {_short(name)} leaves {folder}; "
                "give a path relative to that folder, without '..'"
            )
        out.append((image_id, name))
    return out


def _box(listing: Path, i: int, a: Any, categories: dict[int, str]) -> CocoBox:
    if not isinstance(a, dict):
        raise DatasetError(f"{listing}: annotations[{i}] is not an object, got {_short(a)}")
    name = a["id"] if _is_id(a.get("id")) else f"#{i} (no id)"
    where = f"{listing}: annotation {name}"
    image_id = a.get("image_id")
    if not (_is_id(image_id) or isinstance(image_id, str)):
        raise DatasetError(f"{where} needs an 'image_id' (an integer), got {_short(image_id)}")
    if not _is_id(a.get("category_id")) or a["category_id"] not in categories:
        raise DatasetError(f"{where} names category {_short(a.get('category_id'))}, not among the categories")
    bbox = a.get("bbox")
    if bbox is None:
        raise DatasetError(f"{where} has no bbox ([x, y, width, height]); add it or remove the annotation")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise DatasetError(f"{where}: bbox must be 4 numbers [x, y, width, height], got {_short(bbox)}")
    x, y, w, h = (_float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise DatasetError(f"{where}: bbox {_short(bbox)} is not finite; fix or remove it")
    if w <= 0 or h <= 0:
        raise DatasetError(
            f"{where}: bbox {_short(bbox)} has no area (width and height must be positive); fix or remove it"
        )
    return CocoBox(name, (x, y, w, h), a["category_id"], bool(a.get("iscrowd", 0)))


def _float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        return math.inf


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"an empty {type(value).__name__}" if not value else type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value)
    except (RecursionError, ValueError, TypeError):
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."
