"""Series saved with NumPy: an ``.npz`` holding ``X`` (N, L) or (N, C, L) and ``y`` (N,).

Optional arrays: ``lengths`` (N,) integers 1..L, the valid steps of each series when they differ
(the rest of each row is ignored), and ``classes`` (K,) strings, the class names in index order,
when ``y`` holds integer indices 0..K-1 (then a ``y`` past K-1 is an error). Without ``classes``,
``y`` (integers or strings) holds the labels themselves. Any other array is an error (a typo
would otherwise pass silently).

Read with ``allow_pickle=False``; every array's header (dtype and shape) is read and checked
against the limits, the zip entry's size and deflate's ratio before the array is."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .items import ReadItems, check_count, check_length, check_padded
from .limits import DEFLATE_RATIO, MAX_CHANNELS, MAX_VALUES

_ARRAYS = ("X", "y", "lengths", "classes")
_SMALL_ARRAY_BYTES = 64 << 20  # y, lengths, classes
_MAX_LABEL_CHARACTERS = 256


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, OSError) as e:
        empty = path.is_file() and path.stat().st_size == 0
        raise DatasetError(f"{path}: {'empty file' if empty else f'not an .npz file ({e})'}") from None
    found = {}
    with archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name not in _ARRAYS:
                raise DatasetError(
                    f"{path}: unexpected array {info.filename!r} (expected X, y, optional lengths, classes)"
                )
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise ValueError(f"npy format version {version} is not read")
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
                raise DatasetError(f"{path}: array {name!r} has no readable .npy header ({e})") from None
            if dtype.hasobject:
                raise DatasetError(f"{path}: array {name!r} holds Python objects; save numbers or strings (np.str_)")
            count = int(np.prod(shape, dtype=object))
            size = count * dtype.itemsize
            limit = MAX_VALUES * 8 if name == "X" else _SMALL_ARRAY_BYTES
            if size > limit:
                raise DatasetError(f"{path}: array {name!r} {shape} {dtype} declares {size:,} bytes, past {limit:,}")
            if size > info.file_size or (
                info.compress_type != zipfile.ZIP_STORED and size > info.compress_size * DEFLATE_RATIO + 4096
            ):
                raise DatasetError(
                    f"{path}: array {name!r} {shape} {dtype} declares {size:,} bytes, more than its zip entry holds"
                )
            found[name] = (tuple(shape), dtype)
    return found


def check_npz(path: str | Path) -> None:
    """Every array of an ``.npz`` checked from its header (names, dtype, declared size against the
    limits and the zip entry) before any is read: what a reader of unlabelled series calls before
    ``np.load``, so a small file declaring gigabytes is refused at no cost."""
    _headers(Path(path))


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: np.asarray(data[name]) for name in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from None


def _check_shapes(
    path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]], max_length: int | None, labelled: bool
) -> None:
    for required in ("X", "y") if labelled else ("X",):
        if required not in headers:
            raise DatasetError(f"{path}: no array {required!r} (an .npz of series holds X and y)")
    shape, dtype = headers["X"]
    if len(shape) not in (2, 3) or dtype.kind not in "fiu":
        raise DatasetError(f"{path}: X must be numbers (N, L) or (N, C, L), got {dtype} {shape}")
    n, channels, length = (shape[0], 1, shape[1]) if len(shape) == 2 else shape
    if min(n, channels, length) < 1:
        raise DatasetError(f"{path}: X {shape} is empty")
    check_count(n, str(path))
    if channels > MAX_CHANNELS:
        raise DatasetError(f"{path}: X has {channels:,} channels, past the limit of {MAX_CHANNELS:,}")
    if "lengths" not in headers:
        check_length(length, max_length, f"{path}: X")
    check_padded(n, channels, length, str(path))
    for name, kinds in (("y", "iubU"), ("lengths", "iu"), ("classes", "U")):
        if name not in headers:
            continue
        shape_, dtype_ = headers[name]
        if len(shape_) != 1 or dtype_.kind not in kinds:
            wanted = {"y": "integers or strings", "lengths": "integers", "classes": "strings"}[name]
            raise DatasetError(f"{path}: {name} must be one-dimensional {wanted}, got {dtype_} {shape_}")
        if name != "classes" and shape_[0] != n:
            raise DatasetError(f"{path}: X holds {n:,} series but {name} has {shape_[0]:,} values")
        if dtype_.kind == "U" and dtype_.itemsize // 4 > _MAX_LABEL_CHARACTERS:
            raise DatasetError(f"{path}: {name}'s strings are up to {dtype_.itemsize // 4} characters, "
                               f"past the limit of {_MAX_LABEL_CHARACTERS}")  # fmt: skip


def read_npz(path: str | Path, max_length: int | None = None, labelled: bool = True) -> ReadItems:
    """The series and labels of an ``.npz`` (see the module's docstring for the arrays); without
    ``labelled``, ``y`` may be left out (series to predict)."""
    path = Path(path)
    _check_shapes(path, _headers(path), max_length, labelled)
    data: dict[str, Any] = _load(path)
    x = data["X"]
    x = x[:, None, :] if x.ndim == 2 else x
    n, _, length = x.shape
    lengths = np.full(n, length, dtype=np.int64)
    if "lengths" in data:
        given = data["lengths"]
        bad = np.flatnonzero((given < 1) | (given > length))
        if len(bad):
            raise DatasetError(f"{path}: lengths[{bad[0]}] = {given[bad[0]]} is outside 1..{length} (X's last axis)")
        lengths = given.astype(np.int64)
        longest = int(np.argmax(lengths))
        check_length(int(lengths[longest]), max_length, f"{path}: X[{longest}]")
    valid = np.broadcast_to(np.arange(length)[None, None, :] < lengths[:, None, None], x.shape)
    values = x.astype(np.float32)
    for array, problem in ((x, "(NaN and infinite values are refused, not imputed: fill or drop them first)"),
                           (values, "(past float32's range)")):  # fmt: skip
        bad = ~np.isfinite(array) & valid
        if bad.any():
            i, c, t = np.argwhere(bad)[0]
            raise DatasetError(f"{path}: X[{i}] channel {c + 1} step {t + 1} is {x[i, c, t]} {problem}")
    values[~valid] = 0.0
    if "y" not in data:
        return ReadItems(values, lengths, [], lambda i: f"{path}: X[{i}]", "series", str(path))
    y = data["y"]
    classes = None
    if "classes" in data:
        classes = tuple(str(name) for name in data["classes"])
        if len(set(classes)) != len(classes) or not classes:
            raise DatasetError(f"{path}: classes must be distinct names, at least one")
        if y.dtype.kind == "U":
            raise DatasetError(f"{path}: with classes, y must hold class indices (integers), not names")
        bad = np.flatnonzero((y < 0) | (y >= len(classes)))
        if len(bad):
            raise DatasetError(
                f"{path}: y[{bad[0]}] = {y[bad[0]]} is out of range 0..{len(classes) - 1} (the classes array's indices)"
            )
        labels = [classes[int(v)] for v in y]
    else:
        labels = [str(v) for v in y.tolist()]
        empty = [i for i, label in enumerate(labels) if not label.strip()]
        if empty:
            raise DatasetError(f"{path}: y[{empty[0]}] is an empty label")
    indices = y if y.dtype.kind in "iub" else None
    return ReadItems(values, lengths, labels, lambda i: f"{path}: X[{i}]", "series", str(path), classes, indices)
