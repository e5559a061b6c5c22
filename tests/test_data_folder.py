from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetkit.data import DatasetError, FolderDataset, load_dataset, make_streaming_loader, scan_image_folder
from resnetkit.data.transforms import center_crop, random_hflip, random_resized_crop, resize_shorter

BLUE = (0, 0, 255)


def _save(path: Path, size: tuple[int, int] = (40, 30), color=BLUE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def make_folder(root: Path) -> Path:
    """Classes whose sorted order differs from creation order; PNG and JPEG, nested and upper-case."""
    _save(root / "cat" / "b.png")
    _save(root / "cat" / "a.jpg")
    _save(root / "Dog" / "x.jpeg")
    _save(root / "Dog" / "deeper" / "y.PNG")
    _save(root / "bird" / "z.png")
    (root / "bird" / "notes.txt").write_text("not an image")
    return root


def test_classes_and_samples_sorted_like_image_folder(tmp_path):
    classes, samples = scan_image_folder(make_folder(tmp_path))
    assert classes == ["Dog", "bird", "cat"]
    assert [(p.relative_to(tmp_path).as_posix(), label) for p, label in samples] == [
        ("Dog/x.jpeg", 0),
        ("Dog/deeper/y.PNG", 0),
        ("bird/z.png", 1),
        ("cat/a.jpg", 2),
        ("cat/b.png", 2),
    ]


@pytest.mark.parametrize("mode, chans", [("RGB", 3), ("L", 1)])
@pytest.mark.parametrize("train", [False, True])
def test_items_are_uint8_chw_of_the_requested_size(tmp_path, mode, chans, train):
    dataset = FolderDataset(make_folder(tmp_path), image_size=16, train=train, mode=mode)
    assert len(dataset) == 5 and dataset.num_classes == 3 and dataset.in_chans == chans
    assert len(dataset.mean) == chans == len(dataset.std)
    for index in range(len(dataset)):
        image, label = dataset[index]
        assert image.shape == (chans, 16, 16) and image.dtype == torch.uint8 and image.is_contiguous()
        assert label == dataset.targets[index]


def test_eval_resizes_shorter_side_then_center_crops(tmp_path):
    # 64x32 image: blue centre, red bands of 12 px on the left and right. Resized to 32x16 and
    # center-cropped to 16x16, only the blue centre (original columns 16..47) remains.
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :, 2] = 255
    pixels[:, :12] = pixels[:, 52:] = (255, 0, 0)
    path = tmp_path / "only" / "band.png"
    path.parent.mkdir()
    Image.fromarray(pixels).save(path)
    image, _ = FolderDataset(tmp_path, image_size=16)[0]
    expected = torch.tensor(BLUE, dtype=torch.uint8).view(3, 1, 1).expand(3, 16, 16)
    assert torch.equal(image, expected)
    wider, _ = FolderDataset(tmp_path, image_size=16, resize_size=32)[0]
    assert wider.shape == (3, 16, 16) and torch.equal(wider, expected)


def test_train_crops_are_random_and_seedable(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    (tmp_path / "c").mkdir()
    Image.fromarray(pixels).save(tmp_path / "c" / "noise.png")
    dataset = FolderDataset(tmp_path, image_size=24, train=True)
    torch.manual_seed(1)
    first = [dataset[0][0] for _ in range(4)]
    torch.manual_seed(1)
    again = [dataset[0][0] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(first[0], other) for other in first[1:])


def test_shape_helpers():
    landscape = torch.zeros(3, 30, 60, dtype=torch.uint8)
    portrait = torch.zeros(1, 90, 45, dtype=torch.uint8)
    assert resize_shorter(landscape, 10).shape == (3, 10, 20)
    assert resize_shorter(portrait, 10).shape == (1, 20, 10)
    assert center_crop(landscape, 30).shape == (3, 30, 30)
    with pytest.raises(ValueError, match="cannot center-crop"):
        center_crop(landscape, 31)


def test_random_resized_crop_takes_a_box_of_the_image():
    # Rows hold their index, so a crop resized back to full height must still rise top to bottom.
    image = torch.arange(64, dtype=torch.uint8).view(1, 64, 1).expand(3, 64, 64).contiguous()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = random_resized_crop(image, 32, generator=g1), random_resized_crop(image, 32, generator=g2)
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    column = a[0, :, 0].int()
    assert (column.diff() >= 0).all() and column[-1] > column[0]
    assert torch.equal(random_hflip(image.transpose(1, 2), p=1.0), image.transpose(1, 2).flip(-1))
    assert random_hflip(image, p=0.0) is image


def test_empty_or_imageless_folders_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="no class subfolders") as error:
        FolderDataset(tmp_path)
    assert str(tmp_path) in str(error.value)
    (tmp_path / "empty_class").mkdir()
    _save(tmp_path / "full" / "a.png")
    with pytest.raises(DatasetError, match="in class folder\\(s\\) empty_class"):
        FolderDataset(tmp_path)
    with pytest.raises(DatasetError, match="image folder not found"):
        FolderDataset(tmp_path / "absent")


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "c" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DatasetError, match="unreadable image") as error:
        FolderDataset(tmp_path)[0]
    assert str(bad) in str(error.value)


def test_load_dataset_picks_the_split_subfolder(tmp_path):
    _save(tmp_path / "train" / "a" / "1.png")
    _save(tmp_path / "train" / "b" / "2.png")
    _save(tmp_path / "val" / "a" / "3.png")
    train = load_dataset(str(tmp_path), "train", image_size=8)
    test = load_dataset(str(tmp_path), "test", image_size=8)
    assert train.root == tmp_path / "train" and train.train and train.classes == ["a", "b"]
    assert test.root == tmp_path / "val" and not test.train and len(test) == 1
    whole = load_dataset(str(tmp_path / "train"), "test", image_size=8)
    assert whole.root == tmp_path / "train" and len(whole) == 2


def test_streaming_loader_normalizes_and_shards(tmp_path):
    for i in range(10):
        _save(tmp_path / f"class{i % 2}" / f"{i}.png", (8, 8), (i * 20, 100, 200))
    dataset = FolderDataset(tmp_path, image_size=8, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    shards = []
    for rank in range(2):
        loader = make_streaming_loader(dataset, batch_size=2, shuffle=True, seed=0, rank=rank, world_size=2)
        batches = list(loader)
        assert len(loader) == len(batches) == 3
        x, y = batches[0]
        assert x.dtype == torch.float32 and x.shape == (2, 3, 8, 8) and y.dtype == torch.int64
        shards.append([int(i) for i in loader.sampler])
        first = dataset[shards[-1][0]][0].float() / 255
        expected = (first - torch.tensor([0.5, 0.25, 0.0]).view(3, 1, 1)) / torch.tensor([0.5, 0.25, 1.0]).view(3, 1, 1)
        torch.testing.assert_close(x[0], expected)
        loader.set_epoch(1)
        assert [int(i) for i in loader.sampler] != shards[-1]
    assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == list(range(10))
