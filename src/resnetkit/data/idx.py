"""Readers for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or not.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of dimensions,
one big-endian uint32 per dimension, then the values in big-endian row-major order.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DatasetError

_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzip detected from its content) into a native-endian array."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES or data[3] == 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({ndim} dimensions, {len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(f"{path}: {problem}: dimensions {dims} need {expected} bytes, the data has {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, H, W) uint8 and labels (N,) int64 from a matching pair of IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(f"{labels_path}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()


def load_mnist_split(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The train or test split of an MNIST-style folder (files `.gz` or already uncompressed)."""
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    images_path, labels_path = (_existing(Path(root) / name) for name in MNIST_FILES[split])
    images, labels = load_idx_pair(images_path, labels_path)
    if len(labels) and int(labels.max()) > 9:
        raise DatasetError(f"{labels_path}: label {int(labels.max())} is not a digit class 0..9")
    return images, labels


def _existing(gz_path: Path) -> Path:
    plain = gz_path.with_suffix("")
    if gz_path.is_file() or not plain.is_file():
        return gz_path
    return plain


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return _gunzip(data)
    except (EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from e


def _gunzip(data: bytes) -> bytes:
    # zlib directly inflates twice as fast as gzip.decompress; the CRC is still checked.
    members = []
    while data:
        inflater = zlib.decompressobj(wbits=31)
        members.append(inflater.decompress(data))
        if not inflater.eof:
            raise EOFError("the compressed data ends early")
        data = inflater.unused_data
    return b"".join(members)
