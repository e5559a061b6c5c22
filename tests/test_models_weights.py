"""Weights in and out: formats, peers' checkpoints, adaptation and mismatch errors."""

import stat

import pytest
import torch
import torch.nn.functional as F

from reference import peer_state_dicts
from resnetkit.artifacts import save_weights
from resnetkit.models import WeightsError, adapt_input_conv, create_model, load_weights, read_state_dict


def _randomize_norm_stats(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return model


# An independent re-statement of torchvision's and timm's forward pass written against their
# state_dict keys with torch.nn.functional only: if our modules compute the same function from the
# same tensors, a checkpoint of theirs gives the same outputs in ours.
def _bn(sd, p, x):
    return F.batch_norm(
        x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], eps=1e-5
    )


def _reference_forward(sd, x, layers, bottleneck, groups=1, deep_stem=False, avg_down=False):
    if deep_stem:
        x = F.relu(_bn(sd, "conv1.1", F.conv2d(x, sd["conv1.0.weight"], stride=2, padding=1)))
        x = F.relu(_bn(sd, "conv1.4", F.conv2d(x, sd["conv1.3.weight"], padding=1)))
        x = F.conv2d(x, sd["conv1.6.weight"], padding=1)
    else:
        x = F.conv2d(x, sd["conv1.weight"], stride=2, padding=3)
    x = F.max_pool2d(F.relu(_bn(sd, "bn1", x)), 3, 2, 1)
    for s, n in enumerate(layers):
        for i in range(n):
            p, stride = f"layer{s + 1}.{i}", 2 if s > 0 and i == 0 else 1
            if bottleneck:
                out = F.relu(_bn(sd, f"{p}.bn1", F.conv2d(x, sd[f"{p}.conv1.weight"])))
                out = F.relu(
                    _bn(sd, f"{p}.bn2", F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1, groups=groups))
                )
                out = _bn(sd, f"{p}.bn3", F.conv2d(out, sd[f"{p}.conv3.weight"]))
            else:
                out = F.relu(_bn(sd, f"{p}.bn1", F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1)))
                out = _bn(sd, f"{p}.bn2", F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1))
            if avg_down and f"{p}.downsample.1.weight" in sd:
                sc = F.avg_pool2d(x, 2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else x
                sc = _bn(sd, f"{p}.downsample.2", F.conv2d(sc, sd[f"{p}.downsample.1.weight"]))
            elif f"{p}.downsample.0.weight" in sd:
                sc = _bn(sd, f"{p}.downsample.1", F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride))
            else:
                sc = x
            x = F.relu(out + sc)
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


@pytest.mark.parametrize(
    "name,layers,bottleneck,groups,deep,avg",
    [
        ("resnet18", (2, 2, 2, 2), False, 1, False, False),
        ("resnet50", (3, 4, 6, 3), True, 1, False, False),
        ("resnext50_32x4d", (3, 4, 6, 3), True, 32, False, False),
        ("resnet50d", (3, 4, 6, 3), True, 1, True, True),
        ("resnet18d", (2, 2, 2, 2), False, 1, True, True),
    ],
)
def test_peer_checkpoint_loads_strictly_and_gives_the_same_outputs(
    tmp_path, name, layers, bottleneck, groups, deep, avg
):
    donor = _randomize_norm_stats(create_model(name))
    sd = {k: v.clone() for k, v in donor.state_dict().items()}
    peer = peer_state_dicts().get(name)
    if peer:  # the file we write has exactly the peer's keys and shapes
        assert [[k, list(v.shape)] for k, v in sd.items()] == [e[:2] for e in peer["state_dict"]]
    path = tmp_path / f"{name}.pth"
    torch.save(sd, path)
    model = create_model(name, weights=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            model(x), _reference_forward(sd, x, layers, bottleneck, groups, deep, avg), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".pt"])
def test_save_and_load_roundtrip(tmp_path, suffix):
    model = _randomize_norm_stats(create_model("resnet20")).eval()
    path = save_weights(model, tmp_path / f"w{suffix}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind
    other = create_model("resnet20", weights=path).eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(x), other(x))


def test_saved_files_follow_the_umask(tmp_path):
    from resnetkit.artifacts import atomic

    path = save_weights(create_model("resnet20"), tmp_path / "w.safetensors")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~atomic._UMASK  # 0o644 under the usual 022, not 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left


def test_dataparallel_and_compile_prefixes_and_checkpoint_wrappers(tmp_path):
    sd = create_model("resnet20").state_dict()
    torch.save({"model": {f"module._orig_mod.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "ckpt.pth")
    assert set(read_state_dict(tmp_path / "ckpt.pth")) == set(sd)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"fn": print}, path)
    with pytest.raises(WeightsError, match=r"evil.pth: this file holds Python objects resnetkit will not load") as e:
        read_state_dict(path)
    assert "weights_only=False" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "suffix,needle", [(".safetensors", "not a safetensors file"), (".pth", "not a PyTorch weights")]
)
def test_random_or_empty_files_are_one_line_errors(tmp_path, suffix, needle):
    for content in (b"", b"\x00\x13 random bytes \xff" * 7):
        path = tmp_path / f"w{suffix}"
        path.write_bytes(content)
        with pytest.raises(WeightsError, match=needle) as e:
            read_state_dict(path)
        assert "\n" not in str(e.value)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file"):
        read_state_dict(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="unknown weights format"):
        save_weights(create_model("resnet20"), tmp_path / "w.npz")


def test_different_head_loads_everything_else(tmp_path, caplog):
    donor = _randomize_norm_stats(create_model("resnet18"))
    save_weights(donor, tmp_path / "r18.safetensors")
    model = create_model("resnet18", num_classes=5, weights=tmp_path / "r18.safetensors")
    assert "classifier fc.weight, fc.bias not loaded" in caplog.text
    torch.testing.assert_close(model.layer4[1].bn2.running_var, donor.layer4[1].bn2.running_var)
    assert model.fc.weight.shape == (5, 512)


def test_mismatch_error_lists_keys_shapes_and_guesses_the_source(tmp_path):
    save_weights(create_model("resnet50d"), tmp_path / "d.safetensors")
    with pytest.raises(WeightsError) as err:
        create_model("resnet50", weights=tmp_path / "d.safetensors")
    msg = str(err.value)
    assert "d.safetensors does not fit" in msg
    assert "missing keys" in msg and "conv1.weight" in msg
    assert "unexpected keys" in msg and "conv1.0.weight" in msg
    assert "shape mismatches" in msg and "downsample.1.weight" in msg
    assert msg.endswith("looks like it was saved from: resnet50d")


def test_first_conv_adapted_from_rgb():
    rgb = _randomize_norm_stats(create_model("resnet18")).eval()
    gray = create_model("resnet18", in_chans=1)
    load_weights(gray, rgb.state_dict())
    gray.eval()
    x = torch.randn(2, 1, 32, 32)
    # Summing the RGB filters makes a gray image see exactly what the RGB net sees of it.
    torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)
    w = torch.randn(8, 3, 3, 3)
    five = adapt_input_conv(w, 5)
    assert five.shape == (8, 5, 3, 3)
    torch.testing.assert_close(five[:, :3], w * 3 / 5)
    deep = create_model("resnet50d", in_chans=2)
    load_weights(deep, create_model("resnet50d").state_dict())
    assert deep.conv1[0].weight.shape[1] == 2


def test_features_only_backbone_takes_classifier_weights(tmp_path):
    donor = _randomize_norm_stats(create_model("resnet34"))
    save_weights(donor, tmp_path / "r34.safetensors")
    backbone = create_model("resnet34", features_only=True, weights=tmp_path / "r34.safetensors").eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(backbone(x)[-1], donor.eval().forward_features(x))
