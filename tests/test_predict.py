"""``resnetkit predict``: a checkpoint or tag alone turns image files into classes."""

import json
from pathlib import Path

import pytest

from resnetkit.artifacts import load_model
from resnetkit.cli import main
from resnetkit.infer import predict

# The first Fashion-MNIST test image of each class, as PNG files (docs/results/gradcam/inputs/).
INPUTS = sorted((Path(__file__).parents[1] / "docs" / "results" / "gradcam" / "inputs").glob("*.png"))


def test_the_shipped_model_names_each_class_of_real_images(capsys):
    assert len(INPUTS) == 10
    assert main(["predict", "resnet20.fashion_mnist", *map(str, INPUTS), "--top-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    model = load_model("resnet20.fashion_mnist")
    for path, row in zip(INPUTS, rows, strict=True):
        truth = int(path.name.split("-")[0])  # files are named CLASS-NAME-testINDEX.png
        assert row["image"] == str(path) and len(row["top"]) == 3
        assert row["top"][0]["class"] == truth and row["top"][0]["name"] == model.pretrained_cfg["classes"][truth]
        probs = [t["prob"] for t in row["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_flip_tta_follows_the_training_unless_told(capsys):
    model = load_model("resnet20.fashion_mnist")  # its recipe evaluated with flip TTA
    default, with_tta, without = (predict(model, INPUTS[:2], 10, tta) for tta in (None, True, False))
    assert [p.probs for p in default] == [p.probs for p in with_tta] != [p.probs for p in without]
    assert main(["predict", "resnet20.fashion_mnist", str(INPUTS[0]), "--no-tta-flip"]) == 0
    assert capsys.readouterr().out.startswith(f"{INPUTS[0]}: T-shirt/top ")  # 0-t-shirt-top-test19.png


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["predict", "resnet20.fashion_mnist", "missing.png"], "missing.png"),
        (["predict", "resnet20.fashion_mnist", "x.png", "--top-k", "0"], "--top-k 0"),
        (["predict", "nowhere.pt", "x.png"], "nowhere.pt"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
