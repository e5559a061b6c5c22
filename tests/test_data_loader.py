import pytest
import torch
from torch.utils.data import DistributedSampler

from resnetkit.data import AugmentConfig, InMemoryDataset, InMemoryLoader


def id_dataset(n: int = 103) -> InMemoryDataset:
    """Sample i has label i and every pixel equal to i % 256, so batches reveal their indices."""
    images = (torch.arange(n) % 256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return InMemoryDataset(images, torch.arange(n), [str(i) for i in range(n)], (0.2, 0.4, 0.6), (0.5, 0.25, 0.1))


def labels_of(loader: InMemoryLoader) -> list[int]:
    return [int(i) for _, y in loader for i in y]


@pytest.mark.parametrize("drop_last, sizes", [(False, [10] * 10 + [3]), (True, [10] * 10)])
def test_batches_cover_the_epoch_once(drop_last, sizes):
    loader = InMemoryLoader(id_dataset(103), batch_size=10, shuffle=True, drop_last=drop_last, seed=4)
    batches = list(loader)
    assert len(loader) == len(batches) and [len(y) for _, y in batches] == sizes
    seen = labels_of(loader)
    assert len(set(seen)) == len(seen) == sum(sizes)
    if not drop_last:
        assert sorted(seen) == list(range(103))
    assert seen != sorted(seen)


def test_unshuffled_order_and_normalization():
    dataset = id_dataset(20)
    loader = InMemoryLoader(dataset, batch_size=8, shuffle=False)
    assert labels_of(loader) == list(range(20))
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (8, 3, 4, 4)
    mean, std = torch.tensor(dataset.mean).view(3, 1, 1), torch.tensor(dataset.std).view(3, 1, 1)
    for image, label in zip(x, y, strict=True):
        torch.testing.assert_close(image, ((label.float() / 255 - mean) / std).expand(3, 4, 4))


def test_set_epoch_reorders_and_is_reproducible():
    loader = InMemoryLoader(id_dataset(50), batch_size=7, seed=1)
    first = labels_of(loader)
    assert labels_of(loader) == first
    loader.set_epoch(1)
    second = labels_of(loader)
    assert second != first and sorted(second) == sorted(first)
    assert labels_of(InMemoryLoader(id_dataset(50), batch_size=7, seed=1)) == first


@pytest.mark.parametrize("n", [100, 101])
def test_rank_shards_are_disjoint_equal_and_match_distributed_sampler(n):
    dataset = id_dataset(n)
    shards = []
    for rank in range(2):
        loader = InMemoryLoader(dataset, batch_size=8, seed=3, rank=rank, world_size=2)
        loader.set_epoch(2)
        shards.append(labels_of(loader))
        assert loader.num_samples == n // 2 == len(shards[-1])
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3, drop_last=True)
        sampler.set_epoch(2)
        assert shards[-1] == list(sampler)
    assert not set(shards[0]) & set(shards[1])
    assert len(set(shards[0]) | set(shards[1])) == n - n % 2


def test_augmentation_is_seeded_and_differs_by_rank():
    # Every sample is the same random image, so batches differ only by their augmentation.
    pattern = torch.randint(0, 256, (1, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    labels = torch.zeros(64, dtype=torch.int64)
    dataset = InMemoryDataset(pattern.expand(64, -1, -1, -1), labels, ["a"], (0.5,) * 3, (0.5,) * 3)
    config = AugmentConfig(pad=1, flip=True, erasing=0.5)

    def first_batch(rank: int, seed: int = 0) -> torch.Tensor:
        return next(iter(InMemoryLoader(dataset, 16, augment=config, seed=seed, rank=rank, world_size=2)))[0]

    plain = next(iter(InMemoryLoader(dataset, 16)))[0]
    assert torch.equal(first_batch(0), first_batch(0)) and not torch.equal(first_batch(0), plain)
    assert not torch.equal(first_batch(0), first_batch(1)) and not torch.equal(first_batch(0), first_batch(0, seed=1))
    # Zero padding and erasing fill with 0, the mean once normalized.
    assert (first_batch(0) == 0).any() and not (plain == 0).any()


def mirrored_labels(loader: InMemoryLoader) -> dict[int, bool]:
    """Sample label -> whether the loader mirrored it this epoch (each image is a left-right ramp)."""
    return {int(label): bool(x[i, 0, 0, 0] > x[i, 0, 0, -1]) for x, y in loader for i, label in enumerate(y)}


def test_alternate_flips_mirror_each_image_every_other_epoch():
    n = 50
    ramp = torch.arange(8, dtype=torch.uint8).mul(30).expand(n, 3, 8, 8).contiguous()
    dataset = InMemoryDataset(ramp, torch.arange(n), [str(i) for i in range(n)], (0.5,) * 3, (0.5,) * 3)

    def sides(seed: int, rank: int = 0, world_size: int = 1) -> list[dict[int, bool]]:
        config = AugmentConfig(flip=True, flip_mode="alternate")
        loader = InMemoryLoader(dataset, 7, augment=config, seed=seed, rank=rank, world_size=world_size)
        out = []
        for epoch in range(4):
            loader.set_epoch(epoch)
            out.append(mirrored_labels(loader))
        return out

    epochs = sides(seed=3)
    assert 10 < sum(epochs[0].values()) < 40  # the first epoch's sides are random
    for e in range(1, 4):  # then each image turns over every epoch
        assert all(epochs[e][i] != epochs[e - 1][i] for i in range(n))
    assert epochs[0] != sides(seed=4)[0]
    # Ranks of a distributed run agree on each image's side, whichever rank draws it.
    for rank in (0, 1):
        for epoch, shard in enumerate(sides(seed=3, rank=rank, world_size=2)):
            assert shard and all(side == epochs[epoch][i] for i, side in shard.items())
    # Random flips, by contrast, leave some image the same way round in two epochs in a row.
    loader = InMemoryLoader(dataset, 7, augment=AugmentConfig(flip=True), seed=3)
    first = mirrored_labels(loader)
    loader.set_epoch(1)
    assert any(side == first[i] for i, side in mirrored_labels(loader).items())


def test_channels_last_and_arguments():
    loader = InMemoryLoader(id_dataset(10), batch_size=4, channels_last=True)
    x, _ = next(iter(loader))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert loader.dataset is not None and loader.num_samples == 10 and len(loader) == 3
    with pytest.raises(ValueError, match="rank 2 is outside"):
        InMemoryLoader(id_dataset(10), batch_size=4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        InMemoryLoader(id_dataset(10), batch_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_match_cpu():
    config = AugmentConfig(pad=2, flip=True, erasing=0.5)
    cpu = list(InMemoryLoader(id_dataset(40), 16, augment=config, seed=2))
    cuda = list(InMemoryLoader(id_dataset(40), 16, augment=config, seed=2, device="cuda"))
    for (xc, yc), (xg, yg) in zip(cpu, cuda, strict=True):
        assert xg.device.type == "cuda" and torch.equal(yg.cpu(), yc)
        torch.testing.assert_close(xg.cpu(), xc)


def test_uneven_shards_cover_every_sample_once():
    ds = InMemoryDataset(torch.zeros(11, 1, 2, 2, dtype=torch.uint8), torch.arange(11) % 2, ["a", "b"], (0.5,), (0.5,))
    shards = [InMemoryLoader(ds, 4, shuffle=False, rank=r, world_size=3, even_shards=False) for r in range(3)]
    assert [s.num_samples for s in shards] == [4, 4, 3]
    seen = torch.cat([s.indices() for s in shards])
    assert sorted(seen.tolist()) == list(range(11))
    assert sum(len(y) for s in shards for _, y in s) == 11


def test_streaming_evaluation_shards_cover_every_sample_once():
    from resnetkit.data.loader import EvalShardSampler

    shards = [list(EvalShardSampler(11, r, 3)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
