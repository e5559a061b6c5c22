"""The fast path: every engine and precision gives the model's logits (int8 checked on real
Fashion-MNIST images), int8 is calibrated on the training split, and bad requests are one line."""

import json
from pathlib import Path

import onnx
import pytest
import torch

from resnetkit.artifacts import load_model, model_dataset
from resnetkit.cli import main
from resnetkit.data import eval_loader, sample_subset
from resnetkit.infer import optimize_for_inference
from resnetkit.infer.export import write_onnx
from resnetkit.infer.openvino_model import OpenVINOModel
from resnetkit.infer.quantize import calibration_images, quantize_onnx
from resnetkit.models import create_model

INPUTS = sorted((Path(__file__).parents[1] / "docs" / "results" / "gradcam" / "inputs").glob("*.png"))


@pytest.fixture(scope="module")
def shipped():
    model = load_model("resnet20.fashion_mnist")
    ds = sample_subset(model_dataset(model), 512, 1)
    images = torch.cat([x for x, _ in eval_loader(ds, 256)])
    with torch.no_grad():
        return model, images, model(images)


@pytest.mark.parametrize("engine", ["openvino", "torch"])
@pytest.mark.parametrize("name", ["resnet20", "resnet50d", "preact_resnet18"])
def test_each_engine_gives_the_models_logits(name, engine):
    model = create_model(name).eval()
    size = 32 if model.feature_info[0]["reduction"] == 1 else 64
    x = torch.randn(5, 3, size, size)
    with torch.no_grad():
        reference = model(x)
        fast = optimize_for_inference(model, "fp32", engine=engine, image_size=(size, size))
        bf16 = optimize_for_inference(model, "bf16", engine=engine, image_size=(size, size))
        got, got_bf16 = fast(x), bf16(x)
    assert got.dtype == got_bf16.dtype == torch.float32 and got.shape == reference.shape
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_bf16, reference, rtol=0.05, atol=0.05 * reference.abs().max().item())
    assert fast.path.startswith("OpenVINO CPU, fp32" if engine == "openvino" else "PyTorch cpu, fp32")
    assert fast.num_classes == model.num_classes and fast.in_chans == model.in_chans
    if engine == "torch":  # BatchNorm folded into the convolutions (a pre-act unit's BN after an add stays)
        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
        assert not has_bn or name.startswith("preact")


def test_int8_agrees_with_fp32_on_real_images(shipped):
    model, images, reference = shipped
    calibration = calibration_images(model, 128)
    int8 = optimize_for_inference(model, "int8", calibration)
    with torch.no_grad():
        got = int8(images)
    agreement = (got.argmax(1) == reference.argmax(1)).float().mean().item()
    assert agreement >= 0.99, agreement
    assert int8.path.startswith("OpenVINO CPU, int8 (static QDQ, calibrated on 128 images")
    assert got.dtype == torch.float32 and int8(images[:1]).shape == (1, 10)  # any batch


def test_calibration_comes_from_the_training_split():
    model = load_model("resnet20.fashion_mnist")
    train = model_dataset(model, split="train")
    images = calibration_images(model, 16, seed=3)
    expected = torch.cat([x for x, _ in eval_loader(sample_subset(train, 16, 3), 16)])
    assert torch.equal(images, expected.float())
    with pytest.raises(ValueError, match="int8 needs calibration images"):
        calibration_images(create_model("resnet20"))


def test_the_quantized_graph_is_int8_qdq(tmp_path):
    model = create_model("resnet20").eval()
    x = torch.randn(16, 3, 32, 32)
    fp32 = write_onnx(model, tmp_path / "m.onnx", x[:2])
    int8 = quantize_onnx(fp32, tmp_path / "m.int8.onnx", x)
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "BatchNormalization" not in ops
    with pytest.raises(ValueError, match="calibration"):
        quantize_onnx(fp32, tmp_path / "x.onnx", x[:0])


def test_openvino_runs_a_backbone_one_output_per_level(tmp_path):
    backbone = create_model("resnet18", features_only=True, out_indices=(1, 2, 3)).eval()
    x = torch.randn(3, 3, 64, 64)
    runner = OpenVINOModel.from_model(backbone, "fp32", x)
    with torch.no_grad():
        for got, want in zip(runner(x), backbone(x), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_torch_compile_on_the_pytorch_engine():
    model = create_model("resnet20").eval()
    x = torch.randn(4, 3, 32, 32)
    fast = optimize_for_inference(model, "fp32", compile=True)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    assert fast.path.endswith("torch.compile")


def test_bad_requests_are_refused():
    model = create_model("resnet20")
    with pytest.raises(ValueError, match="precision int8 needs calibration"):
        optimize_for_inference(model, "int8")
    with pytest.raises(ValueError, match="--precision 'int4'"):
        optimize_for_inference(model, "int4")
    with pytest.raises(ValueError, match="engine 'tensorrt'"):
        optimize_for_inference(model, engine="tensorrt")
    with pytest.raises(ValueError, match="int8 runs on OpenVINO"):
        optimize_for_inference(model, "int8", torch.randn(2, 3, 32, 32), engine="torch")


def test_predict_int8_says_so_and_agrees_with_the_reference(capsys):
    assert main(["predict", "resnet20.fashion_mnist", *map(str, INPUTS), "--json", "--precision", "int8"]) == 0
    captured = capsys.readouterr()
    int8 = json.loads(captured.out)
    assert "inference path: OpenVINO CPU, int8" in captured.err
    assert main(["predict", "resnet20.fashion_mnist", *map(str, INPUTS), "--json", "--precision", "fp32"]) == 0
    reference = json.loads(capsys.readouterr().out)
    assert [r["top"][0]["class"] for r in int8] == [r["top"][0]["class"] for r in reference]


def test_int8_without_training_data_is_one_line(tmp_path, capsys):
    from resnetkit.artifacts import export_weights

    path = export_weights(create_model("resnet20"), tmp_path / "fresh.safetensors")
    assert main(["predict", str(path), str(INPUTS[0]), "--precision", "int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "int8 needs calibration images" in err[0]


def test_every_compiled_model_shares_one_core_that_lives_for_the_process(monkeypatch):
    """OpenVINO's CPU plugin installs an alternate signal stack on the thread that creates it and
    frees it with the plugin, leaving it installed: with a Core per model, the Ctrl-C test of
    training (tests/test_train_engine.py, later in the same pytest process) died of SIGSEGV once
    two compiled models had been freed. One Core for the process keeps that memory valid."""
    import gc

    import openvino

    from resnetkit.infer.openvino_model import core

    kept = core()
    made = []
    monkeypatch.setattr(openvino, "Core", lambda *a: made.append(1) or kept)
    model, x = create_model("resnet20").eval(), torch.randn(2, 3, 32, 32)
    first = OpenVINOModel.from_model(model, "fp32", x)
    del first
    gc.collect()
    second = OpenVINOModel.from_model(model, "bf16", x)
    assert not made and core() is kept and second(x).shape == (2, 10)
