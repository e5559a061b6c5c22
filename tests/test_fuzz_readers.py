"""Random and mutated bytes into every reader of outside files: only resnetkit's own one-line
errors come out, never another exception, a crash or a hang (bounded by hypothesis' deadline)."""

import io
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from resnetkit.artifacts import load_checkpoint, load_model, save_checkpoint, save_weights
from resnetkit.data import DatasetError
from resnetkit.data.images import read_image
from resnetkit.models import WeightsError, create_model, read_state_dict
from resnetkit.train.config import ConfigError, load_config_file

OURS = (DatasetError, WeightsError, ConfigError)
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=5),
    derandomize=True,  # the same inputs every run: a CI failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(64 * 3).reshape(8, 8, 3) % 256).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(64 * 3).reshape(8, 8, 3) % 256).astype(np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _safetensors(tmp: Path) -> bytes:
    return save_weights({"w": torch.arange(6.0).view(2, 3)}, tmp / "seed.safetensors").read_bytes()


def _checkpoint(tmp: Path) -> bytes:
    return save_checkpoint(tmp / "seed.pt", model={"w": torch.ones(2)}, step=3).read_bytes()


@st.composite
def mutated(draw, seed: bytes):
    """``seed`` with a few bytes flipped, a slice cut out, or cut short: what a half-written or
    damaged file looks like."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.booleans()):
        a = draw(st.integers(0, len(data) - 1))
        b = draw(st.integers(a, len(data)))
        del data[a:b]
    return bytes(data[: draw(st.integers(0, len(data)))])


def _payloads(seed: bytes):
    return st.one_of(st.binary(max_size=2048), mutated(seed))


def _only_our_errors(call, path: Path) -> None:
    try:
        call(path)
    except OURS as e:
        message = str(e)
        assert "\n" not in message.split("  ")[0] and str(path) in message, message


@pytest.mark.parametrize("seed", [_png(), _jpeg()], ids=["png", "jpeg"])
def test_image_reader(tmp_path, seed):
    @FUZZ
    @given(data=_payloads(seed))
    def run(data):
        path = tmp_path / "x.png"
        path.write_bytes(data)
        _only_our_errors(read_image, path)

    run()


def test_weights_reader(tmp_path):
    seed = _safetensors(tmp_path)

    @FUZZ
    @given(data=_payloads(seed), suffix=st.sampled_from([".safetensors", ".pth"]))
    def run(data, suffix):
        path = tmp_path / f"w{suffix}"
        path.write_bytes(data)
        _only_our_errors(read_state_dict, path)
        _only_our_errors(load_model, path)

    run()


def test_checkpoint_reader(tmp_path):
    seed = _checkpoint(tmp_path)

    @FUZZ
    @given(data=_payloads(seed))
    def run(data):
        path = tmp_path / "c.pt"
        path.write_bytes(data)
        _only_our_errors(load_checkpoint, path)
        _only_our_errors(load_model, path)

    run()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_reader(tmp_path, suffix):
    seed = (
        b"optim:\n  lr: 0.1\ndata:\n  name: digits\n"
        if suffix == ".yaml"
        else json.dumps({"optim": {"lr": 0.1}, "data": {"name": "digits"}}).encode()
    )

    @FUZZ
    @given(data=st.one_of(_payloads(seed), st.text(max_size=300).map(str.encode)))
    def run(data):
        path = tmp_path / f"c{suffix}"
        path.write_bytes(data)
        _only_our_errors(load_config_file, path)

    run()


def test_a_real_model_file_still_loads(tmp_path):
    from resnetkit.artifacts import export_weights

    path = export_weights(create_model("resnet20"), tmp_path / "m.safetensors", dataset={})
    assert load_model(path).num_classes == 10
