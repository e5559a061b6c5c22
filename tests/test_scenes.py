"""Garment scenes: deterministic from the seed, masks and boxes that agree with the pixels, and
test scenes made only of Fashion-MNIST's test images."""

import pytest
import torch

from resnetkit.data import DatasetError, load_dataset
from resnetkit.data.dense import load_dense_dataset
from resnetkit.data.scenes import SceneSpec, _resize, load_scenes

SPEC = SceneSpec(size=96, max_scale=48, train_scenes=40, test_scenes=30)


@pytest.fixture(scope="module")
def garments():
    return {split: load_dataset("fashion-mnist", split) for split in ("train", "test")}


def test_scenes_are_deterministic_from_the_seed(garments):
    g = garments["train"]
    a, b = (
        load_scenes(g.images, g.labels, "train", SPEC, seed=3),
        load_scenes(g.images, g.labels, "train", SPEC, seed=3),
    )
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes, strict=True))
    c = load_scenes(g.images, g.labels, "train", SPEC, seed=4)
    assert not torch.equal(a.images, c.images)


def test_scene_layout_follows_the_spec(garments):
    g = garments["train"]
    ds = load_scenes(g.images, g.labels, "train", SPEC)
    assert ds.images.shape == (40, 1, 96, 96) and ds.images.dtype == torch.uint8 and ds.masks.shape == (40, 96, 96)
    assert ds.classes[0] == "background" and len(ds.classes) == 11
    for boxes, labels, where in zip(ds.boxes, ds.labels, ds.placements, strict=True):
        assert 1 <= len(boxes) <= 6 and len(labels) == len(boxes) == len(where)
        assert bool((labels >= 1).all() and (labels <= 10).all())
        assert bool((where[:, 2] >= 16).all() and (where[:, 2] <= 48).all())
        assert bool((boxes[:, 2:] > boxes[:, :2]).all() and (boxes >= 0).all() and (boxes <= 96).all())


def _check_provenance(ds, source, threshold):
    """The last garment drawn in a scene is whole: its pixels are its source image, resized."""
    for n in range(len(ds)):
        j, (x0, y0, side) = int(ds.sources[n][-1]), ds.placements[n][-1].tolist()
        patch = _resize(source.images[j], side)
        on = patch > threshold
        assert torch.equal(ds.images[n, 0, y0 : y0 + side, x0 : x0 + side][on], patch[on])
        mask = ds.masks[n, y0 : y0 + side, x0 : x0 + side]
        assert bool((mask[on] == int(source.labels[j]) + 1).all())  # the mask has the garment's class
        assert int(ds.labels[n][-1]) == int(source.labels[j]) + 1
        ys, xs = torch.where(on)  # and its box is the tight box of its pixels
        box = [x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1]
        assert ds.boxes[n][-1].tolist() == box


def test_train_scenes_come_from_training_images_and_test_scenes_from_test_images(garments):
    train = load_dense_dataset("fashion-mnist-scenes", "train", None, False, SPEC, 0, "mask")
    test = load_dense_dataset("fashion-mnist-scenes", "test", None, False, SPEC, 0, "mask")
    _check_provenance(train, garments["train"], SPEC.threshold)
    _check_provenance(test, garments["test"], SPEC.threshold)
    assert max(int(s.max()) for s in test.sources) < len(garments["test"])
    assert not torch.equal(train.images[:30], test.images)  # different images and seeds


def test_targets_as_the_tasks_take_them():
    ds = load_dense_dataset("fashion-mnist-scenes", "test", None, False, SPEC, 0, "boxes")
    image, target = ds[2]
    assert image.shape == (1, 96, 96) and set(target) == {"boxes", "labels", "image_id"}
    assert int(target["image_id"]) == 2
    masks = ds.with_target("mask")
    assert torch.equal(masks[2][1], ds.masks[2])
    keep, held = ds.split(10, seed=0)
    assert len(keep) == 20 and len(held) == 10
    assert torch.equal(held.images[0], ds.images[int(held.index[0])])


def test_bad_scene_settings_and_names_are_refused():
    with pytest.raises(ValueError, match="min_scale <= max_scale <= size"):
        SceneSpec(size=64, max_scale=80)
    with pytest.raises(ValueError, match="min_objects <= max_objects"):
        SceneSpec(min_objects=3, max_objects=2)
    with pytest.raises(DatasetError, match="classification dataset"):
        load_dense_dataset("fashion-mnist", "train", None, False, SPEC, 0, "mask")
