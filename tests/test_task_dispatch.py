"""Every tool above the engine asks the model's task instead of comparing task names: the count
of such comparisons outside ``tasks/`` and the model registry is zero, and a saved model's own
record decides how ``predict``, ``eval`` and ``export`` treat it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from dense_helpers import detector, scene, segmenter
from resnetkit.cli import main
from resnetkit.tasks import TASKS

SRC = Path(__file__).resolve().parents[1] / "src" / "resnetkit"
OWNERS = ("tasks", "models")  # where a task's name may be compared: the tasks themselves, the registry


def _names(node: ast.AST) -> set[str]:
    """The task names a comparison's operand spells out (a literal, or a tuple/list/set of them)."""
    if isinstance(node, ast.Constant) and node.value in TASKS:
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names(e) for e in node.elts))
    return set()


def task_name_comparisons(root: Path = SRC) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(_names(o) for o in (node.left, *node.comparators)):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_tool_compares_task_names():
    assert task_name_comparisons() == []


def test_the_count_sees_a_comparison(tmp_path):
    (tmp_path / "infer").mkdir()
    (tmp_path / "infer" / "x.py").write_text('if task == "segmentation" or kind in ("detection", "other"):\n    pass\n')
    assert task_name_comparisons(tmp_path) == ["infer/x.py:1", "infer/x.py:1"]


@pytest.fixture(scope="module")
def dense_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dispatch")
    return {"segmentation": segmenter(folder), "detection": detector(folder)}


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_predict_and_export_follow_the_saved_model_task(dense_models, task, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = scene(tmp_path)
    assert (
        main(["predict", str(dense_models[task]), str(image), "--out", "pictures", "--json", "--min-score", "0.5"]) == 0
    )
    (record,) = json.loads(capsys.readouterr().out)
    assert ("classes" if task == "segmentation" else "boxes") in record and Path(record["picture"]).is_file()
    assert main(["export", str(dense_models[task]), "-o", "m.onnx", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported["real"] is False  # its record names no run: random inputs, and it says so
    import onnx

    meta = json.loads({p.key: p.value for p in onnx.load("m.onnx").metadata_props}["resnetkit"])
    assert meta["task"] == task and meta["card"]["task"] == task


SCENES = ["--set", "data.scenes.size=64", "--set", "data.scenes.max_scale=32"]
SCENES += ["--set", "data.scenes.train_scenes=16", "--set", "data.scenes.test_scenes=8"]


def test_the_model_implies_the_task_and_a_contradiction_is_an_error(tmp_path, capsys):
    args = ["train", "--model", "fcn_resnet20", "--data", "fashion-mnist-scenes", "--batch-size", "8", "--epochs", "1"]
    args += ["--out", str(tmp_path), "--no-progress", "--precision", "fp32", *SCENES]
    assert main([*args, "--name", "seg"]) == 0  # no --task: the model is a segmenter
    assert "test mIoU" in capsys.readouterr().out
    assert json.loads((tmp_path / "seg" / "summary.json").read_text())["task"] == "segmentation"
    assert main(["eval", str(tmp_path / "seg"), "--json"]) == 0  # eval asks the checkpoint's own record
    assert json.loads(capsys.readouterr().out)["task"] == "segmentation"

    assert main([*args, "--name", "bad", "--task", "detection"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--task detection: --model fcn_resnet20 is a segmentation model" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
