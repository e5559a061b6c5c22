"""Class activation maps over time (Wang et al. 2017, Fig. 4): exact (the map's mean plus the
head's bias is the logit), found where the class is decided, and drawn by ``resnetkit gradcam``."""

import json

import numpy as np
import pytest
import torch

import sequence_helpers
from resnetkit.analysis.time_cam import class_activation_map
from resnetkit.cli import main
from resnetkit.models import create_model
from resnetkit.train import fit
from resnetkit.train.config import TrainConfig
from resnetkit.train.recipes import recipe


@pytest.fixture(autouse=True)
def readers(monkeypatch):
    sequence_helpers.install(monkeypatch)


@pytest.mark.parametrize(
    ("name", "options", "make"),
    [
        ("resnet_tsc", {}, lambda: torch.randn(1, 37)),
        ("resnet18", {"spatial_dims": 1, "in_chans": 3}, lambda: torch.randn(3, 64)),  # features 32x shorter
        ("resnet_text", {}, lambda: torch.randint(0, 256, (1, 64))),
    ],
)
def test_the_maps_mean_plus_bias_is_the_logit(name, options, make):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **options).eval()
    inputs = [make(), make()]
    cam = class_activation_map(model, inputs, classes=[0, 2])
    assert cam.classes == [0, 2]
    with torch.no_grad():
        logits = model(torch.stack(inputs))
    for i, c in enumerate(cam.classes):
        assert cam.maps[i].shape == (inputs[i].shape[-1],)
        assert float(cam.raw[i].mean()) + cam.bias[i] == pytest.approx(float(logits[i, c]), abs=1e-4)
        assert cam.scores[i] == pytest.approx(float(logits[i, c]), abs=1e-4)
    with pytest.raises(ValueError, match="class 5"):
        class_activation_map(model, inputs, classes=5)
    with pytest.raises(ValueError, match="1-D model"):
        class_activation_map(create_model("resnet20"), [torch.randn(3, 8, 8)])


def _trained(tmp_path):
    base = recipe("time-series")
    base |= {
        "model": {"name": "resnet_tsc", "overrides": {"channels": [8, 16, 16]}},
        "data": {**base["data"], "name": "toy:series", "batch_size": 8, "batch_fraction": None},
        "max_steps": 30,
        "precision": "fp32",
        "out": str(tmp_path),
        "run_name": "r",
        "progress": False,
    }
    fit(TrainConfig.from_dict(base))
    return tmp_path / "r"


def test_the_map_finds_where_the_class_is_decided_and_is_drawn(tmp_path, capsys):
    run = _trained(tmp_path)
    from resnetkit.artifacts import load_model

    model = load_model(run)
    test = sequence_helpers.bumps(12, 32, 100)
    inputs = [torch.from_numpy(v) for v in test.values]
    cam = class_activation_map(model, inputs, classes=test.targets.tolist())
    # Class 0's bump is at 15% of the series, class 1's at 85%: the evidence for the true class
    # peaks in the half where its bump is.
    right = [(int(m.argmax()) < 16) == (y == 0) for m, y in zip(cam.maps, test.targets, strict=True)]
    assert sum(right) >= 10, right
    np.savez(tmp_path / "two.npz", X=test.values[:2])
    assert main(["gradcam", str(run), str(tmp_path / "two.npz"), "-o", str(tmp_path / "cam")]) == 0
    pngs = sorted((tmp_path / "cam").glob("*.cam.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 1000 for p in pngs)
    record = json.loads(sorted((tmp_path / "cam").glob("*.cam.json"))[0].read_text())
    assert len(record["cam"]) == 32 and record["class_name"] in ("early", "late")
    assert main(["gradcam", str(run), str(tmp_path / "two.npz"), "-o", str(tmp_path / "cam")]) == 2
    assert "would overwrite" in capsys.readouterr().err


def test_gradcam_draws_a_text_models_map(tmp_path):
    assert main(["gradcam", "resnet_text", "waves on the sand", "-o", str(tmp_path)]) == 0
    record = json.loads(next(tmp_path.glob("*.cam.json")).read_text())
    assert record["input"] == "waves on the sand" and len(record["cam"]) == len("waves on the sand")
