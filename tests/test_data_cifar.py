import builtins
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from resnetkit.data import DatasetError, load_cifar, load_dataset
from resnetkit.data.catalog import DATASETS
from resnetkit.data.cifar import CIFAR_LAYOUTS

PER_BATCH = 3


def make_cifar(root: Path, variant: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """An archive laid out like the official one (dicts with bytes keys, protocol 2), and the
    extracted folder; returns the images (N, 3072) and labels of each split."""
    layout = CIFAR_LAYOUTS[variant]
    classes = DATASETS[variant].classes
    rng = np.random.default_rng(0)
    folder = root / layout.folder
    folder.mkdir(parents=True)
    meta = {layout.names_key.encode(): [c.encode() for c in classes]}
    if variant == "cifar100":
        meta[b"coarse_label_names"] = [b"coarse"] * 20
    (folder / layout.meta).write_bytes(pickle.dumps(meta, protocol=2))
    expected = {}
    for split in ("train", "test"):
        parts = []
        for name in getattr(layout, split):
            data = rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8)
            labels = rng.integers(0, len(classes), PER_BATCH).tolist()
            batch = {b"batch_label": name.encode(), layout.label_key.encode(): labels, b"data": data}
            batch[b"filenames"] = [b"img.png"] * PER_BATCH
            (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
            parts.append((data, np.array(labels)))
        expected[split] = (np.concatenate([d for d, _ in parts]), np.concatenate([lab for _, lab in parts]))
    with tarfile.open(root / layout.archive, "w:gz") as tar:
        tar.add(folder, arcname=layout.folder)
    return expected


def _check(result, expected, variant):
    images, labels, classes = result
    assert images.shape == (len(expected[0]), 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    np.testing.assert_array_equal(images.reshape(len(images), -1).numpy(), expected[0])
    np.testing.assert_array_equal(labels.numpy(), expected[1])
    assert classes == list(DATASETS[variant].classes)


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_reads_archive_and_extracted_folder(tmp_path, variant):
    expected = make_cifar(tmp_path, variant)
    layout = CIFAR_LAYOUTS[variant]
    for split in ("train", "test"):
        for source in (tmp_path / layout.archive, tmp_path / layout.folder, tmp_path):
            _check(load_cifar(source, split, variant), expected[split], variant)
    assert len(expected["train"][0]) == PER_BATCH * len(layout.train)


def test_folder_with_only_the_archive(tmp_path):
    expected = make_cifar(tmp_path / "made", "cifar10")
    only = tmp_path / "only"
    only.mkdir()
    (tmp_path / "made" / "cifar-10-python.tar.gz").rename(only / "cifar-10-python.tar.gz")
    _check(load_cifar(only, "test", "cifar10"), expected["test"], "cifar10")


def test_load_dataset_reads_cifar10_from_data_dir(tmp_path):
    expected = make_cifar(tmp_path / "cifar10", "cifar10")
    dataset = load_dataset("cifar10", "train", data_dir=tmp_path, download=False)
    assert len(dataset) == 5 * PER_BATCH and dataset.num_classes == 10 and dataset.in_chans == 3
    np.testing.assert_array_equal(dataset.labels.numpy(), expected["train"][1])


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def test_refuses_pickles_that_call_functions(tmp_path):
    make_cifar(tmp_path, "cifar10")
    marker = tmp_path / "pwned"
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": _Exploit(marker)}, 2))
    with pytest.raises(DatasetError, match=r"refusing to load (builtins|io)\.open") as error:
        load_cifar(tmp_path, "test")
    assert "test_batch" in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, problem",
    [
        ([1, 2, 3], "expected a pickled dict"),
        ({b"labels": [0]}, "missing field 'data'"),
        ({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}, "expected uint8 data"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "outside 0..9"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": 1.5}, "unexpected type float"),
    ],
)
def test_malformed_batches_name_the_batch(tmp_path, content, problem):
    make_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(content, 2))
    with pytest.raises(DatasetError, match=problem) as error:
        load_cifar(tmp_path, "test")
    assert "test_batch" in str(error.value)


def test_missing_member_and_truncated_archive(tmp_path):
    make_cifar(tmp_path, "cifar10")
    archive = tmp_path / "cifar-10-python.tar.gz"
    thin = tmp_path / "thin.tar.gz"
    with tarfile.open(thin, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py" / "batches.meta", arcname="cifar-10-batches-py/batches.meta")
    with pytest.raises(DatasetError, match="missing cifar-10-batches-py/test_batch") as error:
        load_cifar(thin, "test")
    assert str(thin) in str(error.value)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated archive"):
        load_cifar(cut, "train")
    with pytest.raises(DatasetError, match=r"neither cifar-10-python.tar.gz nor an extracted"):
        load_cifar(tmp_path / "cifar-10-batches-py" / "nothing-here", "train")
