"""Test-time augmentation: the views (mirror, and each view moved a few pixels left and right),
averaged the same way by the training's evaluation, ``eval``, ``predict``, ``serve`` and the
exported files, and a TTA setting out of range refused where it is read."""

from __future__ import annotations

import json

import pytest
import torch

from resnetkit import create_model, export_weights, load_model
from resnetkit.artifacts import ModelCard, attach_card
from resnetkit.cli import main
from resnetkit.infer import export_model
from resnetkit.infer.export import ExportError, OnnxClassifier
from resnetkit.models import WeightsError
from resnetkit.tasks import PredictOptions, evaluate, task_of
from resnetkit.tasks.classification import shift_x, tta_views
from resnetkit.train import TrainConfig
from resnetkit.train.config import ConfigError


def test_a_shift_moves_the_image_and_repeats_the_edge_column():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    right, left = shift_x(x, 1), shift_x(x, -1)
    assert torch.equal(right[..., 1:], x[..., :-1]) and torch.equal(right[..., 0], x[..., 0])
    assert torch.equal(left[..., :-1], x[..., 1:]) and torch.equal(left[..., -1], x[..., -1])
    assert torch.equal(shift_x(x, 2)[..., 2:], x[..., :-2]) and torch.equal(shift_x(x, 0), x)


def test_the_views_are_the_image_its_mirror_and_each_moved_both_ways():
    x = torch.randn(2, 1, 5, 6)
    assert len(tta_views(x)) == 1 and len(tta_views(x, flip=True)) == 2
    assert len(tta_views(x, shift=1)) == 3
    views = tta_views(x, flip=True, shift=1)
    expected = [x, x.flip(-1), shift_x(x, 1), shift_x(x, -1), shift_x(x.flip(-1), 1), shift_x(x.flip(-1), -1)]
    assert len(views) == 6 and all(torch.equal(a, b) for a, b in zip(views, expected, strict=True))
    with pytest.raises(ValueError, match="TTA shift 9"):
        tta_views(x, shift=9)


def _model(config):
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=4, in_chans=1).eval()
    card = ModelCard(task="classification", data="digits", classes=tuple("abcd"), in_chans=1, image_size=(8, 8),
                     mean=(0.3,), std=(0.2,), config=config)  # fmt: skip
    return attach_card(model, card)


@torch.no_grad()
def test_evaluate_and_predict_average_the_logits_of_every_view():
    model = _model({"tta_flip": True, "tta_shift": 1})
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 4, (8,))
    mean = torch.stack([model(v) for v in tta_views(x, True, 1)]).mean(0)
    result = evaluate(model, [(x, y)], 4, tta_flip=True, tta_shift=1)
    assert result.top1 == (mean.argmax(1) == y).float().mean().item()
    assert result.plain_top1 == (model(x).argmax(1) == y).float().mean().item()
    task = task_of(model)  # the record's TTA, unless the caller says otherwise
    got = torch.stack(task.predict_batch(model, list(x), PredictOptions()))
    torch.testing.assert_close(got, mean, rtol=1e-4, atol=1e-5)
    flip_only = torch.stack(task.predict_batch(model, list(x), PredictOptions(tta_shift=0)))
    torch.testing.assert_close(flip_only, (model(x) + model(x.flip(-1))) / 2, rtol=1e-4, atol=1e-5)


def test_the_shift_travels_with_the_weights_and_the_exported_file(tmp_path):
    model = _model({"tta_flip": True, "tta_shift": 2})
    path = export_weights(model, tmp_path / "m.safetensors", dataset=model.card)
    assert load_model(path).card.tta_shift == 2
    onnx, _ = export_model(model, tmp_path / "m.onnx", "onnx", inputs=torch.randn(2, 1, 8, 8))
    runner = OnnxClassifier(onnx)
    assert runner.card.tta_shift == 2 and runner.meta["tta_shift"] == 2


@pytest.mark.parametrize("value", [5, -1, "1", True])
def test_a_record_with_a_bad_shift_is_one_line_naming_the_field(tmp_path, value):
    from safetensors.torch import load_file, save_file

    model = _model({"tta_shift": 1})
    path = export_weights(model, tmp_path / "m.safetensors", dataset=model.card)
    record = model.card.to_dict()
    record["training"]["config"]["tta_shift"] = value
    save_file(
        load_file(str(path)), str(path), metadata={"model_cfg": json.dumps(model.model_cfg), "card": json.dumps(record)}
    )
    with pytest.raises(WeightsError, match=r"'training\.config\.tta_shift' must be a whole number in 0-4") as err:
        load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_an_onnx_file_with_a_bad_shift_is_refused(tmp_path):
    import onnx

    from resnetkit.infer.export import METADATA_KEY

    model = _model({})
    path, _ = export_model(model, tmp_path / "m.onnx", "onnx", inputs=torch.randn(2, 1, 8, 8))
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            meta = json.loads(prop.value)
            meta["tta_shift"] = 40
            prop.value = json.dumps(meta)
    onnx.save(proto, str(path))
    with pytest.raises(ExportError, match="metadata field 'tta_shift' must be a whole number in 0-4, not 40"):
        OnnxClassifier(path)


def test_a_shift_out_of_range_is_refused_by_the_config_and_the_flags(capsys):
    with pytest.raises(ConfigError, match="tta_shift: pixels from 0"):
        TrainConfig.from_dict({"tta_shift": 5})
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "resnet20.fashion_mnist", "x.png", "--tta-shift", "9"])
    assert exit_.value.code == 2 and "--tta-shift: '9': pixels from 0 (off) to 4" in capsys.readouterr().err
