from pathlib import Path

import pytest
import torch

from resnetkit.data import DATASETS, DatasetError, InMemoryDataset, compute_mean_std, dataset_info, load_dataset

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not FASHION.is_dir(), reason=f"{FASHION} is absent (apt-get install dataset-fashion-mnist)"
)


def test_known_names_and_info():
    assert list(DATASETS) == ["fashion-mnist", "mnist", "cifar10", "cifar100", "digits"]
    info = dataset_info("CIFAR-100")
    assert (info.name, info.num_classes, info.in_chans, info.image_size) == ("cifar100", 100, 3, (32, 32))
    assert len(set(info.classes)) == 100 and len(info.mean) == len(info.std) == 3
    assert dataset_info("fashion_mnist").classes[0] == "T-shirt/top"
    assert dataset_info("digits").image_size == (8, 8)


def test_unknown_name_lists_the_known_ones():
    for call in (lambda: dataset_info("imagenet"), lambda: load_dataset("imagenet")):
        with pytest.raises(DatasetError, match="unknown dataset 'imagenet'") as error:
            call()
        assert all(name in str(error.value) for name in DATASETS)


def test_paths_are_never_taken_for_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match="image folder not found"):
        load_dataset("./digits")
    with pytest.raises(DatasetError, match="image folder not found"):
        load_dataset(Path("digits"))


def test_named_datasets_only_have_train_and_test():
    with pytest.raises(ValueError, match=r"InMemoryDataset.split"):
        load_dataset("digits", "val")


def test_digits_loads_with_a_fixed_split():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert isinstance(train, InMemoryDataset)
    assert (len(train), len(test)) == (1437, 360) and train.images.shape[1:] == (1, 8, 8)
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255
    assert (torch.bincount(test.labels) - 36).abs().max() <= 1
    assert torch.equal(load_dataset("digits", "test").images, test.images)
    train_set = {tuple(x.flatten().tolist()) for x in train.images}
    assert sum(tuple(x.flatten().tolist()) not in train_set for x in test.images) > 300
    mean, std = compute_mean_std(train.images)
    assert mean == pytest.approx(train.mean, abs=1e-4) and std == pytest.approx(train.std, abs=1e-4)


@needs_fashion
def test_real_fashion_mnist():
    train = load_dataset("fashion-mnist", "train", download=False)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.num_classes == 10 and test.classes == list(dataset_info("fashion-mnist").classes)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    mean, std = compute_mean_std(train.images)
    assert mean == pytest.approx(train.mean, abs=1e-4) and std == pytest.approx(train.std, abs=1e-4)
