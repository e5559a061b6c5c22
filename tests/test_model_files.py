"""Model files are checked before they are used (issue 21): weights with NaN or negative BatchNorm
variances, and a checkpoint whose tensor bytes were overwritten inside an intact archive, are one
line naming the file (exit 2), never a prediction of ``nan`` or a silent 10%."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch

from resnetkit import create_model, export_weights, load_model
from resnetkit.artifacts import save_checkpoint
from resnetkit.cli import main
from resnetkit.models import WeightsError


def _model():
    return create_model("resnet20", num_classes=4, in_chans=1).eval()


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [("layer1.0.conv1.weight", float("nan"), "NaN or infinite"), ("bn1.running_var", -1.0, "negative variances")],
)
def test_damaged_weights_are_refused_naming_the_file_and_tensor(tmp_path, key, value, says):
    model = _model()
    with torch.no_grad():
        model.state_dict()[key].view(-1)[0] = value
    path = export_weights(model, tmp_path / "m.safetensors", dataset={"name": "digits"})
    with pytest.raises(WeightsError, match=rf"{path}: {key} .*{says}"):
        load_model(path)


def _overwrite_inside(path, member_suffix: str) -> str:
    """Flip bytes in the middle of a stored member's data, leaving the archive's structure intact."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix) and i.file_size > 64)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
        start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(start)
        data = f.read(16)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in data))
    return info.filename


def test_a_checkpoint_with_overwritten_tensor_bytes_is_refused_by_eval_and_resume(tmp_path, capsys):
    model = _model()
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    save_checkpoint(
        path, task="classification", model_cfg=model.model_cfg, model=model.state_dict(), dataset={"name": "digits"}
    )
    member = _overwrite_inside(path, "data/0")
    assert zipfile.is_zipfile(path)  # the archive itself still opens
    with pytest.raises(WeightsError, match=rf"{path}: damaged: {member} fails its CRC check"):
        load_model(path)
    assert main(["eval", str(tmp_path / "run")]) == 2
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("fails its CRC check") == 2


def _onnx_with(path, meta: dict, graph=None):
    import json

    import onnx

    proto = onnx.load(str(path)) if graph is None else graph
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "resnetkit", json.dumps(meta)
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    import json

    import onnx

    from resnetkit.infer import export_model

    model = _model()
    model.card = load_model(
        export_weights(
            model,
            tmp_path_factory.mktemp("m") / "m.safetensors",
            dataset={
                "name": "digits",
                "classes": list("abcd"),
                "in_chans": 1,
                "image_size": [8, 8],
                "mean": [0.3],
                "std": [0.2],
            },
        )
    ).card
    path, _ = export_model(model, tmp_path_factory.mktemp("onnx") / "m.onnx", inputs=torch.randn(4, 1, 8, 8))
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["resnetkit"])
    return path, meta


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda m: m.pop("tta_flip"), "'tta_flip' is missing"),
        (lambda m: m.update(num_classes="ten"), "'num_classes' must be a whole number"),
        (lambda m: m["card"].update(classes=list("abc")), "names 3 classes for 4 outputs"),
        (lambda m: m["card"].update(mean=[0.1, 0.2]), "'mean' has 2 values for 1 channels"),
        (lambda m: m["card"].update(std=[0.0]), "'std' must be positive"),
        (lambda m: m["card"].update(image_size=[100_000, 28]), "'image_size' must be two sides"),
        (lambda m: m.update(card=[]), "'card' is not an object"),
    ],
)
def test_onnx_metadata_is_checked_as_a_schema(onnx_file, tmp_path, change, says):
    import copy
    import shutil

    from resnetkit.infer import OnnxClassifier

    path, meta = onnx_file
    meta = copy.deepcopy(meta)
    change(meta)
    bad = _onnx_with(shutil.copy(path, tmp_path / "bad.onnx"), meta)
    with pytest.raises(ValueError, match=str(bad)) as err:
        OnnxClassifier(bad)
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("inputs", "outputs", "says"),
    [
        (
            [("x", 1, [None, 1, 8, 8])],
            [("logits", 1, [None, 4])],
            "a resnetkit classifier takes one input named 'input'",
        ),
        ([("input", 8, [None, 1, 8, 8])], [("logits", 1, [None, 4])], "expected float [N, 1, H, W]"),
        ([("input", 1, [None, 1, 8, 8])], [("logits", 1, [None, 4, 8])], "expected float logits [N, 4]"),
        ([("input", 1, [None, 1, 8, 8])], [("logits", 7, [None, 4])], "expected float logits [N, 4]"),
        ([("input", 1, [None, 1, 8, 8])], [("scores", 1, [None, 4])], "no output named 'logits'"),
    ],
)
def test_an_onnx_file_that_is_no_image_classifier_is_refused(onnx_file, tmp_path, inputs, outputs, says):
    import onnx
    from onnx import helper

    from resnetkit.infer import OnnxClassifier

    _, meta = onnx_file
    ins = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    outs = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
    # Whatever the graph computes, its signature is what is checked: a constant of the output's type.
    shape = [1 if d is None else d for d in outputs[0][2]]
    value = helper.make_tensor("v", outputs[0][1], shape, [0] * int(torch.tensor(shape).prod()))
    graph = helper.make_graph([helper.make_node("Constant", [], [outputs[0][0]], value=value)], "g", ins, outs)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 8
    bad = _onnx_with(tmp_path / "bad.onnx", meta, graph=proto)
    onnx.checker.check_model(onnx.load(str(bad)))
    with pytest.raises(ValueError, match=str(bad)) as err:
        OnnxClassifier(bad)
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("meta", "says"),
    [([1, 2], "not an object"), ({"card": {}, "dataset": [1]}, "'dataset' is not an object"), ({"card": 3}, "'card'")],
)
def test_an_exported_files_record_is_read_as_a_schema(onnx_file, tmp_path, meta, says):
    import shutil

    from resnetkit.infer.export import ExportError, exported_card

    path, _ = onnx_file
    bad = _onnx_with(shutil.copy(path, tmp_path / "bad.onnx"), meta)
    with pytest.raises(ExportError, match=str(bad)) as err:
        exported_card(bad)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_file_whose_record_names_another_architecture_is_one_line(tmp_path, capsys):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = export_weights(_model(), tmp_path / "m.safetensors", dataset={"name": "digits", "in_chans": 1})
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    meta["model_cfg"] = json.dumps({**json.loads(meta["model_cfg"]), "name": "resnet32"})
    save_file(tensors, str(tmp_path / "r32.safetensors"), metadata=meta)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    assert main(["predict", str(tmp_path / "r32.safetensors"), str(image)]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert f"{tmp_path / 'r32.safetensors'}: its record names the architecture 'resnet32'" in err
    assert "missing keys" in err and "the tensors look like resnet20" in err
