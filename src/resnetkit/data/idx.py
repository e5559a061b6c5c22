"""Readers for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or not.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of dimensions,
one big-endian uint32 per dimension, then the values in big-endian row-major order.

The header is read first and its dimensions checked against what the caller expects (MNIST: 28x28
images, at most the official count), against ``max_bytes``, and against the file (an uncompressed
file's size; a gzip file's most that deflate can inflate, 1,032 bytes per byte) before the rest is
inflated, and then only chunk by chunk into one array of the declared size: a small file whose
header lies can never take more memory than its declared, checked size.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

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
# Deflate's ceiling: 258 bytes from a 2-bit code at best, so no gzip member inflates past about
# 1,032 times its size (zeros at level 9 reach 1,029). A header that claims more lies.
_MAX_INFLATION = 1032
_CHUNK = 1 << 20
# The largest array read_idx makes unless told otherwise: over ten times MNIST's training images.
MAX_IDX_BYTES = 1 << 30

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# The format's split sizes (MNIST and Fashion-MNIST alike) and image side.
MNIST_SIZES = {"train": 60_000, "test": 10_000}
MNIST_SIDE = 28


# What a caller's format says of a header's type and dimensions: the problem, or None.
HeaderCheck = Callable[[np.dtype[Any], tuple[int, ...]], str | None]


def read_idx(path: str | Path, check: HeaderCheck | None = None, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file (gzip detected from its content) into a native-endian array.

    ``check`` (the caller's format) and ``max_bytes`` are applied to the header's type and
    dimensions before anything past the header is read."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            gz = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            return _read(_Stream(_inflated(f, gz)), path, size, gz, check, max_bytes)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
    except (EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from e


def _read(stream: _Stream, path: Path, size: int, gz: bool, check: HeaderCheck | None, max_bytes: int) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _TYPES or magic[3] == 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'})")
    dtype, ndim = _TYPES[magic[2]], magic[3]
    header = 4 + 4 * ndim
    raw = stream.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header ({ndim} dimensions, {4 + len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4"))
    problem = check(dtype.newbyteorder("="), dims) if check is not None else None
    if problem:
        raise DatasetError(f"{path}: {problem}")
    payload = math.prod(dims) * dtype.itemsize
    expected = header + payload
    if payload > max_bytes:
        raise DatasetError(
            f"{path}: the header declares dimensions {dims} ({payload:,} bytes), over the limit of {max_bytes:,}"
        )
    if gz and expected > size * _MAX_INFLATION:
        raise DatasetError(
            f"{path}: the header declares dimensions {dims} ({expected:,} bytes), more than a {size:,}-byte gzip "
            "file can inflate to: the header is wrong or the file is cut short; download it again"
        )
    if not gz and size != expected:
        problem = "truncated" if size < expected else "has trailing bytes"
        raise DatasetError(f"{path}: {problem}: dimensions {dims} need {expected} bytes, the data has {size}")
    values = np.empty(dims, dtype)
    got = header + stream.read_into(values.reshape(-1).view(np.uint8).data)
    if got < expected:
        raise DatasetError(f"{path}: truncated: dimensions {dims} need {expected} bytes, the data has {got}")
    if stream.read(1):  # the rest is never inflated: one byte past the declared size is enough
        raise DatasetError(f"{path}: has trailing bytes: dimensions {dims} need {expected} bytes, the data holds more")
    return values.astype(dtype.newbyteorder("="))


class _Stream:
    """The bytes of ``chunks`` read in order, holding at most one chunk at a time."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._rest = memoryview(b"")

    def read_into(self, out: memoryview) -> int:
        filled = 0
        while filled < len(out):
            if not self._rest:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._rest = memoryview(chunk)
            n = min(len(self._rest), len(out) - filled)
            out[filled : filled + n] = self._rest[:n]
            self._rest = self._rest[n:]
            filled += n
        return filled

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        return bytes(buf[: self.read_into(memoryview(buf))])


def _inflated(f: BinaryIO, gz: bool) -> Iterator[bytes]:
    """The file's bytes, inflated member by member when ``gz``, in chunks of at most _CHUNK
    bytes; every member's CRC is checked when it ends (zlib directly: twice gzip's speed)."""
    if not gz:
        while chunk := f.read(_CHUNK):
            yield chunk
        return
    inflater, data, begun = zlib.decompressobj(wbits=31), b"", False
    while True:
        if not data:
            data = f.read(_CHUNK)
            if not data:
                if begun:
                    raise EOFError("the compressed data ends early")
                return
        begun = True
        out = inflater.decompress(data, _CHUNK)
        data = inflater.unconsumed_tail
        if inflater.eof:  # the next member, if any, starts in what this one left over
            data, inflater, begun = inflater.unused_data + data, zlib.decompressobj(wbits=31), False
        if out:
            yield out


def load_idx_pair(
    images_path: str | Path, labels_path: str | Path, max_count: int | None = None, side: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, H, W) uint8 and labels (N,) int64 from a matching pair of IDX files; the
    headers are checked against ``max_count`` images of ``side`` squared (None: any) first."""

    def count(n: int, what: str) -> str | None:
        if max_count is None or n <= max_count:
            return None
        return f"the header declares {n:,} {what}, more than the format's {max_count:,}: not this dataset's file"

    def check_images(dtype: np.dtype[Any], dims: tuple[int, ...]) -> str | None:
        if dtype != np.uint8 or len(dims) != 3:
            return f"expected uint8 images (N, H, W), got {dtype} {dims}"
        if side is not None and dims[1:] != (side, side):
            return f"expected {side}x{side} images, the header declares {dims[1]}x{dims[2]}"
        return count(dims[0], "images")

    def check_labels(dtype: np.dtype[Any], dims: tuple[int, ...]) -> str | None:
        if dtype != np.uint8 or len(dims) != 1:
            return f"expected uint8 labels (N,), got {dtype} {dims}"
        return count(dims[0], "labels")

    images, labels = read_idx(images_path, check_images), read_idx(labels_path, check_labels)
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()


def load_mnist_split(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The train or test split of an MNIST-style folder (files `.gz` or already uncompressed)."""
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    images_path, labels_path = (_existing(Path(root) / name) for name in MNIST_FILES[split])
    images, labels = load_idx_pair(images_path, labels_path, MNIST_SIZES[split], MNIST_SIDE)
    if len(labels) and int(labels.max()) > 9:
        raise DatasetError(f"{labels_path}: label {int(labels.max())} is not a digit class 0..9")
    return images, labels


def _existing(gz_path: Path) -> Path:
    plain = gz_path.with_suffix("")
    if gz_path.is_file() or not plain.is_file():
        return gz_path
    return plain
