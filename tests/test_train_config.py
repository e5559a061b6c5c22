"""Configs reject what they do not know; recipes and schedules say what the papers say."""

import pytest
import torch

from resnetkit.models import create_model
from resnetkit.train import ConfigError, TrainConfig, recipe
from resnetkit.train.config import merge, parse_assignment
from resnetkit.train.optim import build_optimizer, lr_factor, param_groups


def test_unknown_keys_are_errors_at_every_level():
    with pytest.raises(ConfigError, match=r"unknown config key.*epoch\b"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match=r"optim.learning_rate"):
        TrainConfig.from_dict({"optim": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError, match=r"optim.lr: expected float"):
        TrainConfig.from_dict({"optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="epochs: expected int"):
        TrainConfig.from_dict({"epochs": True})
    with pytest.raises(ConfigError, match="log_every: must be at least 1, got 0"):
        TrainConfig.from_dict({"log_every": 0})
    with pytest.raises(ConfigError, match="max_steps: must be at least 1"):
        TrainConfig.from_dict({"max_steps": 0})
    with pytest.raises(ConfigError, match=r"data\.flip_mode: 'sometimes', expected one of random, alternate"):
        TrainConfig.from_dict({"data": {"flip_mode": "sometimes"}})
    with pytest.raises(ConfigError, match=r"data\.pad_mode: 'wrap', expected one of zeros, reflect"):
        TrainConfig.from_dict({"data": {"pad_mode": "wrap"}})


def test_roundtrip_and_assignment():
    cfg = TrainConfig.from_dict(merge(recipe("fashion-mnist"), parse_assignment("optim.weight_decay=0.0002")))
    assert cfg.optim.weight_decay == 2e-4 and cfg.optim.nesterov
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert parse_assignment('model.overrides={"drop_path_rate": 0.1}') == {
        "model": {"overrides": {"drop_path_rate": 0.1}}
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("optim.lr")
    with pytest.raises(ConfigError, match="unknown recipe 'imagenet'"):
        recipe("imagenet")


def test_paper_recipe_is_the_paper():
    cfg = TrainConfig.from_dict(recipe("paper-cifar", "resnet56"))
    assert (cfg.data.batch_size, cfg.data.val_size, cfg.data.pad, cfg.data.flip) == (128, 5000, 4, True)
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay, cfg.max_steps) == (0.1, 0.9, 1e-4, 64000)
    lr = [0.1 * lr_factor(s, 64000, cfg.schedule, 0) for s in (0, 31999, 32000, 47999, 48000, 63999)]
    assert lr == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert cfg.schedule.warmup_steps == 0
    deep = TrainConfig.from_dict(recipe("paper-cifar", "resnet110"))
    warm = deep.schedule.warmup_steps
    assert warm == 400 and 0.1 * lr_factor(0, 64000, deep.schedule, warm) == pytest.approx(0.01)
    assert 0.1 * lr_factor(400, 64000, deep.schedule, warm) == pytest.approx(0.1)


def test_cosine_and_onecycle_with_linear_warmup():
    cfg = TrainConfig.from_dict({"schedule": {"name": "cosine", "warmup_steps": 10}}).schedule
    assert lr_factor(0, 110, cfg, 10) == pytest.approx(0.1) and lr_factor(9, 110, cfg, 10) == pytest.approx(1.0)
    assert lr_factor(10, 110, cfg, 10) == pytest.approx(1.0) and lr_factor(110, 110, cfg, 10) == pytest.approx(0.0)
    one = TrainConfig.from_dict({"schedule": {"name": "onecycle"}}).schedule
    peak = max(range(100), key=lambda s: lr_factor(s, 100, one, 0))
    assert 25 <= peak <= 35 and lr_factor(99, 100, one, 0) < 0.05
    with pytest.raises(ValueError, match=r"schedule.name='linear'"):
        lr_factor(0, 10, TrainConfig.from_dict({"schedule": {"name": "linear"}}).schedule, 0)


def test_weight_decay_groups():
    model = create_model("resnet20")
    both = param_groups(model, 5e-4, decay_norm_and_bias=False)
    assert all(p.ndim > 1 for p in both[0]["params"]) and all(p.ndim <= 1 for p in both[1]["params"])
    assert both[1]["weight_decay"] == 0.0
    assert sum(p.numel() for g in both for p in g["params"]) == sum(p.numel() for p in model.parameters())
    opt = build_optimizer(model, TrainConfig.from_dict({"optim": {"name": "adamw", "lr": 1e-3}}).optim)
    assert isinstance(opt, torch.optim.AdamW)


@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("bad.yaml", "optim:\n  lr: 0.1\n data: x\n", r"bad.yaml: YAML syntax error at line 3, column 2"),
        ("bad.json", '{"optim": {"lr": 0.1,}}', r"bad.json: JSON syntax error at line 1, column 22"),
        ("list.yaml", "- 1\n- 2\n", r"list.yaml: expected a mapping"),
        ("bin.yaml", b"\xff\xfe\x00", r"bin.yaml: not a text file"),
    ],
)
def test_config_file_errors_name_the_file_and_the_line(tmp_path, name, text, needle):
    from resnetkit.train.config import load_config_file

    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=needle) as e:
        load_config_file(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "optim,needle",
    [
        ({"lr": float("inf")}, "optim.lr: must be a finite number"),
        ({"lr": float("nan")}, "optim.lr: must be a finite number"),
        ({"lr": -0.1}, "optim.lr: must be a finite number >= 0"),
        ({"weight_decay": -1e-4}, "optim.weight_decay"),
        ({"momentum": 1.0}, "optim.momentum: must be below 1"),
        ({"clip_grad": 0.0}, "optim.clip_grad"),
    ],
)
def test_impossible_optimizer_values_are_refused_when_read(optim, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig.from_dict({"optim": optim})


def test_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    import errno

    import torch

    from resnetkit.artifacts import load_checkpoint, save_checkpoint
    from resnetkit.artifacts.atomic import DiskFullError

    save_checkpoint(tmp_path / "last.pt", step=1)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(
        DiskFullError, match=r"no space left on device while writing .*last.pt; the previous last.pt is intact"
    ):
        save_checkpoint(tmp_path / "last.pt", step=2)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left
