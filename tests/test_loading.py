"""Pretrained tags and self-describing weights files: load_model needs nothing but the source."""

import json

import pytest
import torch

import resnetkit
from resnetkit import create_model, export_weights, list_models, load_model
from resnetkit.models import WeightsError, registry


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def _ship(weights_dir, tag="resnet20.toy"):
    donor = create_model("resnet20", in_chans=1, num_classes=4)
    export_weights(donor, weights_dir / f"{tag}.safetensors", dataset={"name": "toy", "classes": list("abcd")})
    card = {
        "name": "toy",
        "classes": list("abcd"),
        "num_classes": 4,
        "in_chans": 1,
        "mean": [0.5],
        "std": [0.25],
        "image_size": [28, 28],
    }
    (weights_dir / f"{tag}.json").write_text(json.dumps(card))
    return donor.eval()


def test_pretrained_tag_loads_shipped_weights(weights_dir):
    donor = _ship(weights_dir)
    assert list_models(pretrained=True) == ["resnet20.toy"]
    model = create_model("resnet20.toy", pretrained=True).eval()
    assert (model.num_classes, model.pretrained_cfg["tag"]) == (4, "resnet20.toy")
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(model(x), donor(x))
    same = create_model("resnet20", pretrained=True).eval()  # first tag by default
    torch.testing.assert_close(same(x), donor(x))
    tuned = create_model("resnet20.toy", pretrained=True, num_classes=7)
    assert tuned.fc.out_features == 7
    torch.testing.assert_close(tuned.conv1.weight, donor.conv1.weight)


def test_unknown_tag_is_a_clear_error(weights_dir):
    _ship(weights_dir)
    with pytest.raises(ValueError, match=r"no pretrained tag 'resnet20.imagenet'; resnet20 has resnet20.toy"):
        create_model("resnet20.imagenet", pretrained=True)


def test_load_model_from_self_describing_safetensors(tmp_path):
    donor = create_model("resnet32", in_chans=1, num_classes=3, norm_layer="groupnorm").eval()
    path = export_weights(donor, tmp_path / "m.safetensors", dataset={"name": "digits"})
    model = load_model(path)
    assert not model.training and model.pretrained_cfg == {"name": "digits"}
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(model(x), donor(x))


def test_load_model_refuses_plain_weights_with_a_hint(tmp_path):
    resnetkit.save_weights(create_model("resnet20"), tmp_path / "plain.safetensors")
    with pytest.raises(WeightsError, match="create_model\\(name, weights="):
        load_model(tmp_path / "plain.safetensors")
    with pytest.raises(WeightsError, match="neither a file"):
        load_model(tmp_path / "missing.pt")


def test_a_published_run_is_a_pretrained_tag_that_evaluates_with_no_flags(weights_dir, tmp_path):
    from resnetkit.infer import evaluate_source
    from resnetkit.infer.publish import publish_run
    from resnetkit.train import TrainConfig, fit

    run = fit(
        TrainConfig.from_dict(
            {
                "model": {"name": "resnet20"},
                "data": {"name": "digits", "batch_size": 64, "pad": 1},
                "max_steps": 3,
                "precision": "fp32",
                "out": str(tmp_path / "runs"),
                "run_name": "r",
                "progress": False,
            }
        ),
        argv=["resnetkit", "train", "--data", "digits"],
    ).run_dir
    weights, card_path = publish_run(run, "digits_test", weights_dir)
    assert weights.name == "resnet20.digits_test.safetensors"
    card = json.loads(card_path.read_text())
    assert (card["name"], card["num_classes"], card["in_chans"], card["image_size"]) == ("digits", 10, 1, [8, 8])
    assert card["training"]["command"] == "resnetkit train --data digits" and card["training"]["steps"] == 3
    assert card["training"]["config"]["max_steps"] == 3
    report = evaluate_source("resnet20.digits_test", precision="fp32")
    assert report["data"] == "digits" and report["n"] == 360
    assert report["top1"] == pytest.approx(card["test"]["plain"]["top1"])
    assert card["test"]["tta_flip"]["n"] == 360
