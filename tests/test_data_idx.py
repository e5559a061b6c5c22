import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from resnetkit.data import DatasetError, load_dataset, load_idx_pair, load_mnist_split, read_idx

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, _CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist(root: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(30, dtype=np.uint8).reshape(2, 3, 5),
        (np.arange(30, dtype=np.int16) * 1000 - 9000).reshape(5, 6),
        np.arange(-15, 15, dtype=np.int32) * 100_000,
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 2, 2),
    ],
    ids=["uint8", "int16", "int32", "float32"],
)
def test_read_idx_round_trips(tmp_path, gz, array):
    got = read_idx(write_idx(tmp_path / "a.idx", array, gz))
    assert got.dtype == array.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


_IMAGES = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda b: b"\x01" + b[1:], "bad magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "bad magic number"),
        (lambda b: b"", "bad magic number"),
        (lambda b: b[:3] + b"\x00" + b[4:], "bad magic number"),
        (lambda b: b[:9], "truncated IDX header"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
    ],
)
def test_corrupt_idx_names_the_file_and_problem(tmp_path, mutate, problem):
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(mutate(idx_bytes(_IMAGES))))
    with pytest.raises(DatasetError) as error:
        read_idx(bad)
    assert str(bad) in str(error.value) and problem in str(error.value)


def test_truncated_and_corrupt_gzip_name_the_file(tmp_path):
    data = gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.gz"
    flipped.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    for path in (truncated, flipped):
        with pytest.raises(DatasetError, match="corrupt or truncated gzip") as error:
            read_idx(path)
        assert str(path) in str(error.value)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "absent.gz")


def test_pair_checks_dims_and_counts(tmp_path):
    images = write_idx(tmp_path / "images.gz", _IMAGES)
    with pytest.raises(DatasetError, match=r"has 3 images but .* has 2 labels"):
        load_idx_pair(images, write_idx(tmp_path / "two.gz", np.zeros(2, np.uint8)))
    with pytest.raises(DatasetError, match="expected uint8 labels"):
        load_idx_pair(images, write_idx(tmp_path / "2d.gz", np.zeros((3, 1), np.uint8)))
    with pytest.raises(DatasetError, match="expected uint8 images"):
        load_idx_pair(write_idx(tmp_path / "flat.gz", np.zeros(3, np.uint8)), images)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_split_reads_both_splits(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_mnist_split(tmp_path, split)
        assert images.shape == (len(arrays[prefix][0]), 1, 28, 28) and images.dtype == torch.uint8
        assert labels.dtype == torch.int64
        np.testing.assert_array_equal(images[:, 0].numpy(), arrays[prefix][0])
        np.testing.assert_array_equal(labels.numpy(), arrays[prefix][1])


def test_mnist_labels_must_be_digit_classes(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 10, 2], np.uint8))
    with pytest.raises(DatasetError, match="label 10 is not a digit class") as error:
        load_mnist_split(tmp_path, "test")
    assert "t10k-labels-idx1-ubyte.gz" in str(error.value)


def test_load_dataset_reads_mnist_from_data_dir(tmp_path):
    arrays = write_mnist(tmp_path / "mnist")
    dataset = load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    assert len(dataset) == 4 and dataset.classes == [str(i) for i in range(10)]
    np.testing.assert_array_equal(dataset.labels.numpy(), arrays["t10k"][1])
