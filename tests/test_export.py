"""Export: every registered model and backbone to ONNX with parity checked in ONNX Runtime; the
shipped model's file predicts and evaluates alone, as the PyTorch model does."""

import json
from pathlib import Path

import onnx
import pytest
import torch

from resnetkit.artifacts import load_model
from resnetkit.cli import main
from resnetkit.infer import ExportError, OnnxClassifier, evaluate_model, export_model, predict
from resnetkit.models import FeatureListNet, create_model, list_models
from resnetkit.models.profile import count_params

INPUTS = sorted((Path(__file__).parents[1] / "docs" / "results" / "gradcam" / "inputs").glob("*.png"))
# Exporting costs time in proportion to depth and file size in proportion to weights: the
# deepest and widest run with the slow tests.
HEAVY = {n for n in list_models() if n.endswith(("1202", "1001")) or "101" in n or "152" in n}
HEAVY |= {n for n in list_models() if count_params(create_model(n).to("meta")) > 50e6}


def _marks(name):
    return pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    model = load_model("resnet20.fashion_mnist")
    path, parity = export_model(model, out / "r20.onnx")
    return model, path, parity


def test_the_shipped_model_exports_with_parity_on_its_own_test_images(shipped):
    model, path, parity = shipped
    assert parity.real and parity.images == 256 and parity.top1_agreement == 1.0 and parity.max_rel_diff <= 1e-4
    proto = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["resnetkit"])
    assert meta["dataset"]["classes"] == model.pretrained_cfg["classes"] and meta["dataset"]["image_size"] == [28, 28]
    assert meta["tta_flip"] is True and meta["num_classes"] == 10 and meta["model_cfg"]["name"] == "resnet20"
    assert not any(node.op_type == "BatchNormalization" for node in proto.graph.node)  # folded into the convs
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"  # not fixed at the example's size
    assert not list(path.parent.glob(".*.tmp"))


def test_the_onnx_file_alone_predicts_and_evaluates_as_the_model(shipped, tmp_path):
    model, path, _ = shipped
    runner = OnnxClassifier(path)
    for ours, theirs in zip(predict(model, INPUTS, 3), predict(runner, INPUTS, 3), strict=True):
        assert ours.classes == theirs.classes and ours.names == theirs.names
        assert ours.probs == pytest.approx(theirs.probs, abs=1e-5)
    a = evaluate_model(model, precision="fp32", tta_flip=False)
    b = evaluate_model(runner, precision="fp32", tta_flip=False)
    assert a["n"] == b["n"] == 10000 and a["top1"] == b["top1"]
    assert main(["predict", str(path), str(INPUTS[0]), "--json"]) == 0


@pytest.mark.parametrize("fmt,suffix", [("pt2", ".pt2"), ("torchscript", ".ts")])
def test_torch_export_and_torchscript_programs_carry_their_metadata(shipped, tmp_path, fmt, suffix):
    model, _, _ = shipped
    path, parity = export_model(model, tmp_path / f"m{suffix}", fmt)
    assert parity.top1_agreement == 1.0 and parity.max_rel_diff <= 1e-4
    x = torch.randn(5, 1, 28, 28)  # another batch size than the example's
    if fmt == "pt2":
        extra = {"resnetkit": ""}
        program = torch.export.load(str(path), extra_files=extra)
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-4)
    else:
        extra = {"resnetkit": ""}
        scripted = torch.jit.load(str(path), _extra_files=extra)
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-4)
    assert json.loads(extra["resnetkit"])["dataset"]["name"] == "fashion-mnist"


def test_an_export_that_does_not_reproduce_the_model_leaves_no_file(shipped, tmp_path):
    model, _, _ = shipped
    with pytest.raises(ExportError, match=r"not written, the export does not reproduce the model"):
        export_model(model, tmp_path / "m.onnx", rtol=0.0)
    assert list(tmp_path.iterdir()) == []


def test_the_command_line(tmp_path, capsys):
    out = tmp_path / "r20.onnx"
    assert main(["export", "resnet20.fashion_mnist", "-o", str(out), "--images", "64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(out) and report["images"] == 64 and report["top1_agreement"] == 1.0
    assert main(["eval", str(out), "--json", "--no-tta-flip", "--out", str(tmp_path / "ev")]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == pytest.approx(0.947)  # the card's figure without TTA
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    assert main(["predict", str(tmp_path / "junk.onnx"), str(INPUTS[0])]) == 2
    assert "junk.onnx: not an ONNX model" in capsys.readouterr().err


@pytest.mark.parametrize("name", [_marks(n) for n in list_models()])
def test_every_registered_model_exports(tmp_path, name):
    model = create_model(name).eval()
    size = 32 if model.feature_info[0]["reduction"] == 1 else 64
    _, parity = export_model(model, tmp_path / "m.onnx", inputs=torch.randn(3, 3, size, size), rtol=1e-4)
    assert parity.top1_agreement == 1.0


@pytest.mark.parametrize("name", ["resnet18", "resnet50d", "resnet20", "preact_resnet18", "wrn16_4"])
def test_backbones_export_one_output_per_level(tmp_path, name):
    backbone = create_model(name, features_only=True, out_indices=(0, 1, 2, 3))
    size = 32 if backbone.feature_info[0]["reduction"] == 1 else 64
    path, parity = export_model(backbone, tmp_path / "b.onnx", inputs=torch.randn(2, 3, size, size))
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["feature0", "feature1", "feature2", "feature3"]
    assert not parity.classifier and parity.max_rel_diff <= 1e-4
    assert isinstance(backbone, FeatureListNet)


def test_predict_says_which_path_ran_and_agrees_with_the_reference(capsys):
    assert main(["predict", "resnet20.fashion_mnist", *map(str, INPUTS), "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main(["predict", "resnet20.fashion_mnist", *map(str, INPUTS), "--json", "--precision", "fp32"]) == 0
    captured = capsys.readouterr()
    reference = json.loads(captured.out)
    assert "inference path: PyTorch eager" in captured.err
    assert [r["top"][0]["class"] for r in fast] == [r["top"][0]["class"] for r in reference]
