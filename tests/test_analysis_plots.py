"""Every analysis writes a readable PNG and a JSON of its numbers."""

import json

import matplotlib.image
import pytest
import torch

from resnetkit.analysis import (
    GradientProbe,
    compare_gradients,
    grad_cam,
    layer_responses,
    lesion_study,
    to_jsonable,
    write_json,
)
from resnetkit.analysis.plots import plot_gradcam, plot_gradients, plot_lesion, plot_responses
from resnetkit.models import create_model


def _png(path):
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.01  # something was drawn
    return img


def _json(path):
    with open(path) as f:
        return json.load(f)


def test_gradients_png_and_json(tmp_path):
    probe = GradientProbe(batch_size=4, image_size=16, n_points=8, max_lag=4)
    comparison = compare_gradients(("plain20", "resnet20"), probe=probe)
    _png(plot_gradients(comparison, tmp_path / "gradients.png"))
    data = _json(write_json(comparison, tmp_path / "gradients.json"))
    assert data["norm"] is True and data["probe"]["n_points"] == 8
    plain = data["models"][0]
    assert plain["model"] == "plain20" and plain["residual"] is False
    assert plain["spread"] == pytest.approx(comparison.models[0].spread)
    assert [g["norm"] for g in plain["layers"]] == [g.norm for g in comparison.models[0].layers]
    assert plain["correlation"]["autocorrelation"] == comparison.models[0].correlation.autocorrelation


def test_responses_png_and_json(tmp_path):
    x = torch.randn(4, 3, 16, 16)
    profiles = {name: layer_responses(create_model(name), x) for name in ("plain20", "resnet20")}
    _png(plot_responses(profiles, tmp_path / "responses.png"))
    data = _json(write_json(profiles, tmp_path / "responses.json"))
    assert data["resnet20"]["std"] == profiles["resnet20"].std
    assert data["plain20"]["units"][0] == "layer1.0"


def test_lesion_png_and_json(tmp_path):
    data = [(torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,)))]
    reports = {name: lesion_study(create_model(name), data) for name in ("plain20", "resnet20")}
    _png(plot_lesion(reports, tmp_path / "lesion.png"))
    saved = _json(write_json(reports, tmp_path / "lesion.json"))
    assert saved["plain20"]["units"][3] == {
        "unit": "layer2.0",
        "index": 3,
        "accuracy": None,
        "drop": None,
        "skipped": "changes shape and has no shortcut",
    }
    assert saved["resnet20"]["baseline"] == reports["resnet20"].baseline


@pytest.mark.parametrize("chans", [1, 3])
def test_gradcam_png_and_json(tmp_path, chans):
    images = torch.randn(3, chans, 32, 32)
    cam = grad_cam(create_model("resnet20", in_chans=chans), images)
    _png(plot_gradcam(images, cam, tmp_path / "gradcam.png", class_names=[f"c{i}" for i in range(10)]))
    saved = _json(write_json(cam, tmp_path / "gradcam.json"))
    assert saved["classes"] == cam.classes
    assert torch.tensor(saved["heatmaps"]).shape == (3, 32, 32)


def test_json_has_no_infinities():
    assert to_jsonable({"spread": float("inf"), "x": (1.5, float("nan"))}) == {"spread": None, "x": [1.5, None]}
