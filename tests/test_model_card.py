"""The model record (``ModelCard``): one typed record that travels with the weights through every
file resnetkit writes and comes back with ``load_model``; older files still load; a bad record is
one line naming the file and the field; and the record's splits make ``eval`` measure a run's own
held-out images, never its training images."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from resnetkit import create_model, export_weights, load_model
from resnetkit.artifacts import ModelCard, Splits, model_card, save_checkpoint
from resnetkit.cli import main
from resnetkit.infer import evaluate_source, export_model
from resnetkit.infer.export import OnnxClassifier, exported_card
from resnetkit.models import WeightsError

CARD = ModelCard(
    task="classification",
    data="digits",
    classes=tuple("abcd"),
    in_chans=1,
    image_size=(8, 8),
    mean=(0.3,),
    std=(0.2,),
    source_classes=(0, 2, 5, 9),
    splits=Splits(train=90, val=0, test=10, test_held_out=True, seed=3, test_size=0.1, held_out=("a/1.png",)),
    config={"seed": 3, "tta_flip": True, "data": {"name": "digits", "test_size": 0.1}},
    results={"top1": 0.75, "n": 10},
    provenance={"command": "resnetkit train ..."},
)


def _model():
    return create_model("resnet20", num_classes=4, in_chans=1).eval()


def test_the_record_round_trips_through_its_dict():
    assert ModelCard.from_dict(CARD.to_dict()) == CARD
    assert CARD.tta_flip and CARD.seed == 3 and CARD.accuracy == 0.75


def test_the_record_travels_through_safetensors(tmp_path):
    path = export_weights(_model(), tmp_path / "m.safetensors", dataset=CARD)
    assert load_model(path).card == CARD


def test_the_record_travels_through_a_checkpoint_with_the_results_of_its_run(tmp_path):
    model = _model()
    raw = CARD.to_dict()
    dataset = {
        k: raw[k] for k in ("name", "classes", "mean", "std", "in_chans", "image_size", "source_classes", "splits")
    }
    save_checkpoint(
        tmp_path / "last.pt", task="classification", model_cfg=model.model_cfg, model=model.state_dict(),
        dataset=dataset, config=dict(CARD.config),
    )  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps({"test": {"top1": 0.75, "n": 10}, "test_weights": "last.pt"}))
    loaded = load_model(tmp_path)
    assert loaded.card == ModelCard(**{**vars(CARD), "provenance": {}})
    # A summary of other weights (best.pt) is not this checkpoint's result.
    (tmp_path / "summary.json").write_text(json.dumps({"test": {"top1": 0.5}, "test_weights": "best.pt"}))
    assert load_model(tmp_path).card.results is None


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_the_record_travels_through_every_export_format(tmp_path, fmt):
    model = _model()
    model.card = CARD
    inputs = torch.randn(4, 1, 8, 8)
    path, _ = export_model(model, tmp_path / f"m.{fmt}", fmt, inputs=inputs)
    assert exported_card(path) == CARD
    if fmt == "onnx":
        runner = OnnxClassifier(path)
        assert runner.card == CARD and model_card(runner).tta_flip


def test_files_of_before_the_record_still_load(tmp_path):
    shipped = load_model("resnet20.fashion_mnist")  # a shipped card of turn 1
    assert shipped.card.task == "classification" and shipped.card.classes[6] == "Shirt"
    assert shipped.card.accuracy == pytest.approx(0.9504)
    model = _model()
    # A checkpoint of before tasks: no task, the data facts, the config.
    save_checkpoint(
        tmp_path / "old.pt", model_cfg=model.model_cfg, model=model.state_dict(),
        dataset={"name": "digits", "classes": list("abcd"), "in_chans": 1}, config={"tta_flip": False},
    )  # fmt: skip
    old = load_model(tmp_path / "old.pt")
    assert old.card.task == "classification" and old.card.classes == tuple("abcd") and old.card.splits is None


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("std", [0.0], "'std' must be positive"),
        ("mean", [0.1, 0.2], "'mean' has 2 values for 1 channels"),
        ("mean", [], "'mean' must be a list"),
        ("classes", "abcd", "'classes' must be a list"),
        ("image_size", [0, 28], "'image_size' must be two sides"),
        ("in_chans", 10**9, "'in_chans' must be a whole number"),
        ("task", 7, "'task' is not a name"),
    ],
)
def test_a_bad_record_is_one_line_naming_the_file_and_the_field(tmp_path, field, value, says):
    record = {**CARD.to_dict(), field: value}
    path = tmp_path / "m.safetensors"
    export_weights(_model(), path, dataset={"name": "digits"})
    from safetensors.torch import load_file, save_file

    save_file(
        load_file(str(path)),
        str(path),
        metadata={"model_cfg": json.dumps(_model().model_cfg), "card": json.dumps(record)},
    )
    with pytest.raises(WeightsError, match=str(path)) as err:
        load_model(path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_record_whose_task_contradicts_its_model_is_refused(tmp_path):
    path = export_weights(_model(), tmp_path / "m.safetensors", dataset={**CARD.to_dict(), "task": "detection"})
    with pytest.raises(WeightsError, match="record says detection but it holds a classification model"):
        load_model(path)


def _photos(root, per_class=10):
    rng = np.random.default_rng(0)
    for c, colour in enumerate(["red", "green", "blue"]):
        (root / colour).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((12, 12, 3), dtype=np.uint8)
            pixels[..., c] = 160 + rng.integers(0, 90)
            Image.fromarray(pixels).save(root / colour / f"{i}.png")


def test_eval_measures_the_run_held_out_images_never_its_training_images(tmp_path, capsys):
    _photos(tmp_path / "photos")
    args = ["train", "--data", str(tmp_path / "photos"), "--model", "resnet20", "--epochs", "1", "--batch-size", "9"]
    args += ["--set", "data.image_size=12", "--set", "data.test_size=0.2", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path), "--name", "run", "--no-progress", "--precision", "fp32"]) == 0
    card = load_model(tmp_path / "run").card
    assert card.splits.test_held_out and card.splits.seed == 5 and len(card.splits.held_out) == 6
    assert card.results is not None and card.results["n"] == 6  # the run measured its test split
    report = evaluate_source(tmp_path / "run", precision="fp32")
    assert report["n"] == 6 and report["top1"] == pytest.approx(card.results["top1"])
    train = evaluate_source(tmp_path / "run", split="train", precision="fp32")
    assert train["n"] == 24  # the rest: the two never overlap
    capsys.readouterr()
    from fastapi.testclient import TestClient

    from resnetkit.serve import ServeConfig, create_app

    with TestClient(create_app(str(tmp_path / "run"), ServeConfig(precision="fp32"))) as client:
        for _ in range(300):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        served = client.get("/v1/model").json()
    assert served["accuracy"]["top1"] == pytest.approx(card.results["top1"]) and served["task"] == "classification"


def test_embed_adapts_the_images_to_the_model_channels(tmp_path):
    from resnetkit.data import load_dataset
    from resnetkit.infer.embed import embed_source

    gray = load_dataset("digits", "test")
    rgb = gray.with_channels(3)
    assert rgb.in_chans == 3 and torch.equal(rgb.images[:, 0], rgb.images[:, 2])
    assert torch.equal(rgb.with_channels(1).images, gray.images)  # the luma of a grey picture is the picture
    # RGB photos for a 1-channel model are read as grayscale, as predict reads them.
    _photos(tmp_path / "photos")
    emb = embed_source("resnet20.fashion_mnist", str(tmp_path / "photos"), splits=("train",), device="cpu")
    assert emb.features["train"].shape == (30, 64)


def test_finetune_feeds_the_new_data_as_the_source_was_fed(tmp_path, capsys):
    _photos(tmp_path / "photos")
    args = ["finetune", "resnet20.fashion_mnist", "--data", str(tmp_path / "photos"), "--max-steps", "1"]
    args += ["--batch-size", "8", "--no-progress", "--precision", "fp32", "--out", str(tmp_path)]
    assert main([*args, "--name", "ft"]) == 0
    assert "from resnet20.fashion_mnist's record: data.image_size=28, data.channels=1" in capsys.readouterr().err
    card = load_model(tmp_path / "ft").card
    # The RGB photos are read as the grayscale the source saw, at its size, with its statistics.
    assert (card.in_chans, card.image_size, card.mean, card.std) == (1, (28, 28), (0.286,), (0.353,))
    # What the user says wins over the record.
    assert main([*args, "--name", "own", "--set", "data.image_size=12", "--set", "data.channels=3"]) == 0
    own = load_model(tmp_path / "own").card
    assert (own.in_chans, own.image_size) == (3, (12, 12))
