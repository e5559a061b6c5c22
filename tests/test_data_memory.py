import pytest
import torch

from resnetkit.data import InMemoryDataset, compute_mean_std


def make_dataset(n: int = 100, num_classes: int = 4, channels: int = 3) -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, 5, 6), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % num_classes
    return InMemoryDataset(images, labels, [f"c{i}" for i in range(num_classes)], (0.5,) * channels, (0.25,) * channels)


def test_mean_std_match_a_float_computation():
    images = make_dataset(channels=3).images
    x = images.double() / 255
    mean, std = compute_mean_std(images)
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), x.mean((0, 2, 3)))
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), x.std((0, 2, 3), unbiased=False))


def test_validates_its_fields():
    good = make_dataset()
    with pytest.raises(ValueError, match="images must be uint8"):
        InMemoryDataset(good.images.float(), good.labels, good.classes, good.mean, good.std)
    with pytest.raises(ValueError, match="labels must be int64"):
        InMemoryDataset(good.images, good.labels[:-1], good.classes, good.mean, good.std)
    with pytest.raises(ValueError, match=r"labels must lie in 0..3"):
        InMemoryDataset(good.images, good.labels + 1, good.classes, good.mean, good.std)
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        InMemoryDataset(good.images, good.labels, good.classes, (0.5,), (0.25,))


def test_properties_and_items():
    dataset = make_dataset(n=10, num_classes=5, channels=1)
    assert (len(dataset), dataset.num_classes, dataset.in_chans, dataset.image_size) == (10, 5, 1, (5, 6))
    image, label = dataset[7]
    assert torch.equal(image, dataset.images[7]) and label == 2


def test_split_is_fixed_disjoint_and_complete():
    dataset = make_dataset(n=100)
    train, val = dataset.split(val_size=10, seed=0)
    again_train, again_val = dataset.split(val_size=10, seed=0)
    _, other_val = dataset.split(val_size=10, seed=1)
    assert (len(train), len(val)) == (90, 10)
    assert torch.equal(val.images, again_val.images) and torch.equal(train.images, again_train.images)
    assert not torch.equal(val.images, other_val.images)
    # Each image is unique here (random 90-byte images), so images identify samples.
    seen = torch.cat([train.images, val.images]).flatten(1)
    assert len(torch.unique(seen, dim=0)) == 100
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, dataset.images.flatten(1).tolist()))
    assert (val.classes, val.mean, val.std) == (dataset.classes, dataset.mean, dataset.std)


def test_stratified_split_keeps_class_proportions():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    dataset = InMemoryDataset(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), labels, ["a", "b", "c"], (0.5,), (0.5,))
    _, val = dataset.split(val_size=0.2, seed=3, stratify=True)
    assert torch.bincount(val.labels).tolist() == [12, 6, 2]
    _, val = dataset.split(val_size=7, seed=3, stratify=True)
    assert len(val) == 7 and torch.bincount(val.labels, minlength=3).tolist() == [4, 2, 1]


def test_split_rejects_sizes_that_empty_a_side():
    with pytest.raises(ValueError, match="leaves no training"):
        make_dataset(n=10).split(val_size=10)
