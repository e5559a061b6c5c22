"""``finetune`` of a segmenter or detector (issue 21): a new head for the new data's classes,
parts frozen as for a classifier (``--freeze``, ``--mode linear-probe``), the parts being the
task's (``Task.transfer_parts``): the stem and stages of the classifier the dense model is built
on, and everything else as its head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dense_helpers import detector, segmenter
from resnetkit import create_model, load_model
from resnetkit.cli import main
from resnetkit.tasks import get_task


def _mask_folder(root, n=12, size=16):
    rng = np.random.default_rng(0)
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "masks").mkdir(parents=True)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        x, y = rng.integers(0, size // 2, 2)
        mask[y : y + 6, x : x + 6] = 1
        grey = (mask * 200 + rng.integers(0, 30, mask.shape)).astype(np.uint8)
        Image.fromarray(np.stack([grey] * 3, -1)).save(root / "train" / "images" / f"{i}.png")  # RGB
        Image.fromarray(mask).save(root / "train" / "masks" / f"{i}.png")
    (root / "classes.txt").write_text("background\nblock\n")
    return root


def _coco_folder(root, n=10, size=32):
    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    images, annotations = [], []
    for i in range(n):
        pixels = rng.integers(0, 40, (size, size), dtype=np.uint8)
        x, y = (int(v) for v in rng.integers(0, size // 2, 2))
        pixels[y : y + 12, x : x + 12] = 200
        Image.fromarray(pixels).save(root / "train" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "height": size, "width": size})
        annotations.append({"id": i, "image_id": i, "category_id": 3, "bbox": [x, y, 12, 12], "iscrowd": 0})
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 3, "name": "block"}]}
    (root / "train.json").write_text(json.dumps(coco))
    return root


def _finetune(tmp_path, source, data, *extra):
    args = ["finetune", str(source), "--data", str(data), "--max-steps", "2", "--batch-size", "4"]
    args += ["--out", str(tmp_path / "runs"), "--name", "ft", "--no-progress", "--precision", "fp32"]
    args += ["--set", "data.image_size=32"]
    return main([*args, *extra])


def _same(a: dict, b: dict, prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    return bool(keys) and all(torch.equal(a[k], b[k]) for k in keys)


def test_a_segmenter_finetunes_to_new_classes_with_its_backbone_frozen(tmp_path):
    # A grey segmenter on RGB masks' images: converted to its one channel as for a classifier.
    source = load_model(segmenter(tmp_path)).state_dict()
    data = _mask_folder(tmp_path / "seg")
    assert _finetune(tmp_path, tmp_path / "segmenter.safetensors", data, "--freeze", "backbone") == 0
    model = load_model(tmp_path / "runs" / "ft" / "last.pt")
    assert model.num_classes == 2 and list(model.card.classes) == ["background", "block"]
    after = model.state_dict()
    # The backbone did not move, BatchNorm statistics included (frozen parts stay in eval mode);
    # the head below the new last layer did.
    assert _same(source, after, "backbone.")
    assert not _same(source, after, "classifier.0.")


def test_a_detector_finetunes_with_its_first_stages_frozen(tmp_path):
    source = load_model(detector(tmp_path)).state_dict()
    data = _coco_folder(tmp_path / "coco")
    extra = ["--freeze", "stage2", "--lr", "0.01", "--set", "data.test_size=0.2"]
    assert _finetune(tmp_path, tmp_path / "detector.safetensors", data, *extra) == 0
    model = load_model(tmp_path / "runs" / "ft" / "last.pt")
    assert model.num_classes == 2 and list(model.card.classes) == ["background", "block"]  # 1-based labels
    after = model.state_dict()
    for frozen in ("backbone.body.conv1.", "backbone.body.bn1.", "backbone.body.layer1.", "backbone.body.layer2."):
        assert _same(source, after, frozen), frozen
    for trained in ("backbone.body.layer4.", "backbone.fpn.", "head.regression_head."):
        assert not _same(source, after, trained), trained


def test_dense_transfer_parts_are_the_trunk_and_all_else_as_head():
    model = create_model("fcos_resnet18_fpn", num_classes=3, in_chans=1, fpn_channels=16)
    parts = get_task("detection").from_options().transfer_parts(model)
    assert [name for name, _ in parts] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    in_parts = {id(p) for _, modules in parts for m in modules for p in m.parameters()}
    assert in_parts == {id(p) for p in model.parameters()}  # every parameter is in exactly one part
    assert sum(len(list(m.parameters())) for _, ms in parts for m in ms) == len(list(model.parameters()))


@pytest.mark.parametrize(("flag", "says"), [("stage9", "the model has stages 1..3"), ("layer2", "transfer.freeze")])
def test_a_freeze_that_cannot_apply_to_a_dense_model_is_one_line(tmp_path, capsys, flag, says):
    segmenter(tmp_path)
    data = _mask_folder(tmp_path / "seg")
    assert _finetune(tmp_path, tmp_path / "segmenter.safetensors", data, "--freeze", flag) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and "Traceback" not in "\n".join(err)
