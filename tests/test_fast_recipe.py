"""The time-to-accuracy recipe (issue 24): a residual net of the registry, trained by the one
engine; its accuracy and time are measured by benchmarks/fast_recipe.py, not here."""

import json

from resnetkit.cli import main
from resnetkit.models import create_model, model_task
from resnetkit.models.profile import count_macs
from resnetkit.train import TrainConfig, recipe


def test_the_recipe_names_a_registered_residual_net_cheaper_than_resnet20():
    cfg = TrainConfig.from_dict(recipe("fashion-mnist-fast"))
    assert cfg.model.name == "resnet8_pool" and model_task(cfg.model.name) == "classification"
    assert cfg.epochs == 12 and cfg.optim.lr == 0.4 and cfg.data.name == "fashion-mnist"
    # Chosen on a validation split: flips and pad-1 crops, with flip and 1-px shift TTA to match; a
    # 32-wide stem and first stage that pools before its norm, late stages 80 and 160 wide.
    assert cfg.tta_flip and cfg.tta_shift == 1 and cfg.data.flip and cfg.data.pad == 1
    net = create_model(cfg.model.name, in_chans=1, **cfg.model.overrides)
    assert [info["num_chs"] for info in net.feature_info][1:] == [32, 80, 160]
    assert all(block.residual for block in net.blocks()) and len(net.blocks()) == 3
    assert net.feature_info.reduction() == [1, 2, 4, 8]  # the pool stem: every stage at half resolution
    assert net.stem_names == ("conv1", "maxpool", "bn1", "act1")
    assert count_macs(net, 28, 1) < 0.8 * count_macs(create_model("resnet20", in_chans=1), 28, 1)


def test_the_recipe_trains_through_the_cli(tmp_path, capsys):
    args = ["train", "--recipe", "fashion-mnist-fast", "--max-steps", "3", "--out", str(tmp_path), "--name", "f"]
    assert main([*args, "--no-progress"]) == 0
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["model"] == "resnet8_pool" and summary["steps"] == 3
    assert summary["test"]["n"] == 10000 and "plain_top1" in summary["test"]  # flip TTA, and without
    config = (tmp_path / "f" / "config.yaml").read_text()
    assert "recipe: fashion-mnist-fast" in config and "batch_size: 256" in config
