"""Image files become the input a model was trained on."""

import numpy as np
import pytest
import torch
from PIL import Image

from resnetkit.data import DatasetError
from resnetkit.infer import input_spec, load_images
from resnetkit.models import create_model


def test_rgb_file_to_a_grayscale_model_trained_at_28px(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((40, 30, 3), 128, dtype=np.uint8)).save(path)
    model = create_model("resnet20", in_chans=1)
    model.pretrained_cfg = {"in_chans": 1, "image_size": [28, 28], "mean": [0.5], "std": [0.25]}
    x = load_images([path, path], model)
    assert x.shape == (2, 1, 28, 28)
    torch.testing.assert_close(x, torch.full_like(x, (128 / 255 - 0.5) / 0.25))


def test_untrained_models_get_their_own_defaults():
    spec = input_spec(create_model("resnet18"))
    assert (spec.in_chans, spec.image_size, spec.mean) == (3, (224, 224), (0.485, 0.456, 0.406))
    assert input_spec(create_model("resnet20")).image_size == (32, 32)
    with pytest.raises(ValueError, match="4-channel"):
        input_spec(create_model("resnet20", in_chans=4))


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(DatasetError, match=r"notes.png: unreadable image"):
        load_images([bad], create_model("resnet20"))
