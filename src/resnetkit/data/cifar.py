"""Readers for the official CIFAR-10 / CIFAR-100 python archives, packed (.tar.gz) or extracted.

Format (https://www.cs.toronto.edu/~kriz/cifar.html): each batch is a pickled dict with `data`,
a uint8 (N, 3072) array of planar RGB 32x32 images, and `labels` (CIFAR-10) or `fine_labels`
(CIFAR-100); the meta file holds the class names.

Sizes are checked against the format before anything is allocated: a batch file (or archive
member) larger than the format's rows could fill is not read, the unpickler makes an array only
from the bytes the file holds (never ``numpy.ndarray(shape)`` of a size the file merely names),
and each batch may hold at most the official count of images (10,000 per CIFAR-10 batch; CIFAR-100:
50,000 train, 10,000 test), one label per image, and the meta file the variant's number of classes.
"""

from __future__ import annotations

import codecs
import importlib
import io
import math
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .errors import DatasetError


def _numpy_internal(module: str, name: str) -> Any:
    """What old pickles of arrays call by name: numpy 2 moved ``numpy.core`` to ``numpy._core``."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {module}.{name}")


_numpy_reconstruct = _numpy_internal("multiarray", "_reconstruct")
scalar = _numpy_internal("multiarray", "scalar")
_frombuffer = _numpy_internal("numeric", "_frombuffer")


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    archive: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    classes: int
    train_rows: int  # the most images one batch file of the split holds
    test_rows: int

    def max_rows(self, name: str) -> int:
        return self.train_rows if name in self.train else self.test_rows

    def max_bytes(self, name: str) -> int:
        """The largest file ``name`` can be: its images, and room for labels and file names."""
        return _META_BYTES if name == self.meta else self.max_rows(name) * (_IMAGE_BYTES + 1024) + _META_BYTES


_IMAGE_BYTES = 3 * 32 * 32
_META_BYTES = 1 << 20


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout(
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        meta="batches.meta",
        label_key="labels",
        names_key="label_names",
        classes=10,
        train_rows=10_000,
        test_rows=10_000,
    ),
    "cifar100": CifarLayout(
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        train=("train",),
        test=("test",),
        meta="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        classes=100,
        train_rows=50_000,
        test_rows=10_000,
    ),
}


def load_cifar(
    source: str | Path, split: str = "train", variant: str = "cifar10"
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images (N, 3, 32, 32) uint8, labels (N,) int64 and class names of one split.

    `source` is the .tar.gz, the extracted `cifar-*-python` folder, or a folder holding either.
    """
    if variant not in CIFAR_LAYOUTS:
        raise ValueError(f"variant must be one of {sorted(CIFAR_LAYOUTS)}, got {variant!r}")
    layout = CIFAR_LAYOUTS[variant]
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    names = (*getattr(layout, split), layout.meta)
    members = _read_members(Path(source), layout, names)
    where = {name: f"{source} ({layout.folder}/{name})" for name in names}
    classes = _class_names(_field(members[layout.meta], layout.names_key, where[layout.meta]), where[layout.meta])
    if len(classes) != layout.classes:
        raise DatasetError(f"{where[layout.meta]}: {len(classes)} class names, {variant} has {layout.classes}")
    images, labels = [], []
    for name in names[:-1]:
        data = _field(members[name], "data", where[name])
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DatasetError(f"{where[name]}: expected uint8 data (N, 3072), got {got}")
        if len(data) > layout.max_rows(name):
            raise DatasetError(
                f"{where[name]}: {len(data):,} images, more than the {layout.max_rows(name):,} a {variant} batch holds"
            )
        targets = _labels(_field(members[name], layout.label_key, where[name]), len(data), where[name])
        if targets.shape != (len(data),):
            raise DatasetError(f"{where[name]}: {targets.size} labels for {len(data)} images")
        if targets.size and (targets.min() < 0 or targets.max() >= len(classes)):
            raise DatasetError(f"{where[name]}: a label lies outside 0..{len(classes) - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(targets)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)), classes


def _read_members(source: Path, layout: CifarLayout, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    for folder in (source / layout.folder, source):
        if (folder / layout.meta).is_file():
            missing = [name for name in names if not (folder / name).is_file()]
            if missing:
                raise DatasetError(f"{folder}: missing {', '.join(missing)}")
            for name in names:
                _check_size((folder / name).stat().st_size, layout.max_bytes(name), folder / name)
            return {name: _unpickle((folder / name).read_bytes(), folder / name) for name in names}
    archive = source / layout.archive if source.is_dir() else source
    if not archive.is_file():
        raise DatasetError(f"{source}: neither {layout.archive} nor an extracted {layout.folder}/ folder")
    wanted = {f"{layout.folder}/{name}": name for name in names}
    found: dict[str, dict[str, Any]] = {}
    try:
        # One pass in archive order: reading members out of order would re-inflate the gzip stream.
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    _check_size(member.size, layout.max_bytes(wanted[member.name]), f"{archive}:{member.name}")
                    extracted = tar.extractfile(member)
                    if extracted is None:  # isfile() says it is a file, so tarfile gives its contents
                        continue
                    data = extracted.read()
                    found[wanted[member.name]] = _unpickle(data, Path(f"{archive}:{member.name}"))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{archive}: corrupt or truncated archive ({e})") from e
    missing = [name for name in names if name not in found]
    if missing:
        raise DatasetError(f"{archive}: missing {', '.join(f'{layout.folder}/{m}' for m in missing)}")
    return found


def _check_size(size: int, limit: int, path: Path | str) -> None:
    if size > limit:
        raise DatasetError(
            f"{path}: {size:,} bytes, more than this CIFAR file can be ({limit:,}): "
            "not the official file; download it again"
        )


class _NdarrayType:
    """What a pickle's ``numpy.ndarray`` names: the type ``_reconstruct`` is given, never a call.
    ``numpy.ndarray(shape)`` allocates an array of any size from a few bytes of pickle."""

    def __call__(self, *args: Any) -> Any:
        raise pickle.UnpicklingError("refusing to call numpy.ndarray (an array the file does not hold)")


_NDARRAY = _NdarrayType()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """numpy's ``_reconstruct`` as its pickles call it: an empty array that the pickle's own
    bytes then fill (``__setstate__`` checks they match the shape), never a shape to allocate."""
    if subtype is not _NDARRAY or not isinstance(shape, tuple) or math.prod(shape) != 0:
        raise pickle.UnpicklingError("refusing numpy _reconstruct of anything but an empty ndarray")
    return _numpy_reconstruct(np.ndarray, shape, dtype)


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 2 byte strings arrive in a protocol-2 pickle: latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return codecs.encode(text, encoding)


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what the official batches contain: numpy arrays, lists, numbers and strings,
    each array made only from bytes the file holds.

    Unpickling data from an untrusted source can run arbitrary code. We only read the official
    archive (checksum-verified where we download it); refusing every other global is a second guard.
    """

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.multiarray", "scalar"): scalar,
        ("numpy._core.multiarray", "scalar"): scalar,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("_codecs", "encode"): _latin1,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _unpickle(data: bytes, path: Path) -> dict[str, Any]:
    try:
        # encoding="bytes": the official batches were pickled by Python 2, their str keys become bytes.
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:
        raise DatasetError(f"{path}: not a CIFAR batch ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    batch = {_text(k): v for k, v in obj.items()}
    for key, value in batch.items():
        if not isinstance(value, (np.ndarray, list, bytes, str, int)):
            raise DatasetError(f"{path}: field {key!r} has unexpected type {type(value).__name__}")
    return batch


def _field(batch: dict[str, Any], key: str, where: str) -> Any:
    if key not in batch:
        raise DatasetError(f"{where}: missing field {key!r}")
    return batch[key]


def _class_names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, (bytes, str)) for v in value):
        raise DatasetError(f"{where}: class names must be a list of strings, got {type(value).__name__}")
    try:
        return [_text(v) for v in value]
    except UnicodeDecodeError as e:
        raise DatasetError(f"{where}: a class name is not UTF-8 ({e.reason})") from None


def _labels(value: Any, count: int, where: str) -> np.ndarray:
    """Labels as int64, from a list of ints (the official batches) or an integer array."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            raise DatasetError(f"{where}: labels must be integers, got {value.dtype}")
        return value.astype(np.int64)
    if not isinstance(value, list) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        raise DatasetError(f"{where}: labels must be a list of integers, one per image ({count} images)")
    try:
        return np.asarray(value, dtype=np.int64)
    except OverflowError:
        raise DatasetError(f"{where}: a label is too large for a class index") from None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
