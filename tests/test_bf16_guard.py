"""The bf16 convolution guard (resnetkit.train.bf16_guard): under native CPU bf16, a strided
convolution fed a single point is refused in any bf16 training forward, before its backward pass, in
one line; other shapes, fp32, evaluation and CPUs without native bf16 train as before. The CPU is patched so
the rule is tested on any host; the fault itself shows on AVX-512 BF16 hosts only."""

from types import SimpleNamespace

import pytest
import torch

from resnetkit import create_model
from resnetkit.cli import main
from resnetkit.runtime.device import cpu_supports_bf16
from resnetkit.train import bf16_guard
from resnetkit.train.bf16_guard import Bf16ConvGuard, UnsafeBf16Conv, affected, strided_convs

CPU = torch.device("cpu")


def _guard(model, mode="bf16"):
    guard = Bf16ConvGuard()
    guard.trainer = SimpleNamespace(model=model, device=CPU, precision=SimpleNamespace(mode=mode))
    return guard


def test_only_native_cpu_bf16_is_affected():
    assert affected("bf16", CPU) == cpu_supports_bf16()
    assert not affected("fp32", CPU)
    assert not affected("bf16", torch.device("cuda"))


def test_strided_convs_are_the_downsampling_3x3s_and_the_stem():
    names = set(strided_convs(create_model("resnet18", num_classes=3)))
    # the stem's 7x7/2 and each later stage's first 3x3/2; not the 1x1/2 projection shortcuts
    assert names == {"conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1"}


def test_a_single_point_input_is_refused_in_bf16_training_forwards_only(monkeypatch):
    monkeypatch.setattr(bf16_guard, "cpu_supports_bf16", lambda: True)
    model = create_model("resnet18", num_classes=3, in_chans=1)
    guard = _guard(model)
    guard.before_train()
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    with bf16:
        model(torch.randn(2, 1, 32, 32)).float().sum().backward()  # every stage's input 2x2 or more
    with bf16, pytest.raises(UnsafeBf16Conv, match=r"layer 'layer4.0.conv1' \(3x3 conv, stride 2\) gets a 1x1 input"):
        model(torch.randn(2, 1, 16, 16))
    model(torch.randn(2, 1, 16, 16))  # fp32: right, so not refused
    with bf16, torch.no_grad():
        model(torch.randn(2, 1, 16, 16))  # evaluation: no weight gradient
    guard.after_train()
    assert all(not m._forward_pre_hooks for m in model.modules())  # the model leaves the run clean


def test_1d_nets_on_short_series_are_caught(monkeypatch):
    monkeypatch.setattr(bf16_guard, "cpu_supports_bf16", lambda: True)
    model = create_model("resnet18", spatial_dims=1, in_chans=2, num_classes=3)
    _guard(model).before_train()
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(UnsafeBf16Conv, match="gets a 1 input"):
        model(torch.randn(2, 2, 16))


def test_fp32_and_no_native_bf16_install_nothing(monkeypatch):
    model = create_model("resnet18", num_classes=3, in_chans=1)
    _guard(model, "fp32").before_train()
    monkeypatch.setattr(bf16_guard, "cpu_supports_bf16", lambda: False)
    _guard(model, "bf16").before_train()
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_train_refuses_in_one_line_with_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bf16_guard, "cpu_supports_bf16", lambda: True)
    # digits are 8x8: ResNet-18's stem and max-pool leave 2x2, so layer3's 3x3/2 gets 1x1
    argv = ["train", "--model", "resnet18", "--data", "digits", "--epochs", "1", "--max-steps", "1"]
    argv += ["--batch-size", "16", "--out", str(tmp_path), "--no-progress"]
    assert main([*argv, "--precision", "bf16", "--name", "bf16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layer 'layer3.0.conv1'" in err[0] and "--precision fp32" in err[0], err
    assert not (tmp_path / "bf16" / "last.pt").exists()
    assert main([*argv, "--precision", "fp32", "--name", "fp32"]) == 0
