"""Transfer learning: frozen parts stay bit-identical (weights and BatchNorm statistics), the head
is new and of the right size, each part trains at its own lr, plain torchvision-layout state dicts
load through --model, the label subset is seeded, balanced and recorded, and embed writes what it
says. Trained on scikit-learn's digits from the shipped Fashion-MNIST ResNet-20 (both 1 channel)."""

import json
import math

import numpy as np
import pytest
import torch

from resnetkit import create_model, load_model
from resnetkit.cli import main
from resnetkit.data import DatasetError, balanced_indices, load_dataset, parse_classes, select_classes
from resnetkit.infer.embed import knn_predict
from resnetkit.tasks import get_task
from resnetkit.train import TrainConfig, fit
from resnetkit.train.config import ConfigError, OptimConfig, TransferConfig
from resnetkit.train.optim import build_scheduler
from resnetkit.train.transfer import TransferPlan, frozen_parts

SOURCE = "resnet20.fashion_mnist"


def _cfg(tmp_path, transfer=None, **data):
    return TrainConfig.from_dict(
        {
            "model": {"name": "resnet20", "weights": SOURCE},
            "data": {"name": "digits", "batch_size": 32, "pad": 1, "flip": False, **data},
            "optim": {"lr": 0.05},
            "schedule": {"name": "constant"},
            "transfer": {"mode": "finetune", **(transfer or {})},
            "max_steps": 3,
            "precision": "fp32",
            "out": str(tmp_path),
            "run_name": "ft",
            "progress": False,
            "channels_last": False,
        }
    )


def _parts(model):
    return get_task("classification").from_options().transfer_parts(model)


def _plan(model, cfg, steps):
    return TransferPlan(model, cfg, steps, _parts(model))


def _source_state():
    return {k: v.clone() for k, v in load_model(SOURCE).state_dict().items()}


def _prefix(state, *prefixes):
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def _identical(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_freeze_stage2_keeps_stem_and_stages_1_2_bit_identical_and_trains_the_rest(tmp_path):
    before = _source_state()
    model = fit(_cfg(tmp_path, {"freeze": "stage2"})).model
    after = model.state_dict()
    frozen = ("conv1.", "bn1.", "layer1.", "layer2.")
    # Weights and running statistics alike: frozen BN layers ran in eval mode.
    assert _identical(_prefix(before, *frozen), _prefix(after, *frozen))
    assert any("running_mean" in k for k in _prefix(before, *frozen))
    assert not _identical(_prefix(before, "layer3."), _prefix(after, "layer3."))
    assert model.fc.out_features == 10 and all(not p.requires_grad for p in model.layer2.parameters())


def test_linear_probe_trains_only_a_new_head_of_the_new_size(tmp_path):
    before = _source_state()
    run = fit(_cfg(tmp_path, {"mode": "linear-probe"}, classes="0-3"))
    after = run.model.state_dict()
    backbone = {k: v for k, v in before.items() if not k.startswith("fc.")}
    assert _identical(backbone, after)
    assert run.model.fc.weight.shape == (4, 64) and run.model.num_classes == 4
    assert run.test["n"] == sum(1 for y in load_dataset("digits", "test").labels.tolist() if y < 4)


def test_new_head_is_fresh_even_when_the_source_head_has_the_right_size(tmp_path):
    # 10 digits, 10 garments: same size, but the garment head means nothing for digits.
    model = fit(_cfg(tmp_path, {"mode": "linear-probe"})).model
    source = load_model(SOURCE)
    assert not torch.equal(model.fc.weight, source.fc.weight)


def test_bn_train_lets_frozen_statistics_adapt_but_not_their_weights(tmp_path):
    before = _source_state()
    after = fit(_cfg(tmp_path, {"freeze": "backbone", "bn": "train"})).model.state_dict()
    stats = {k: v for k, v in before.items() if "running_mean" in k}
    weights = {k: v for k, v in before.items() if k.endswith(".weight") and not k.startswith("fc.")}
    assert not _identical(stats, after)
    assert _identical(weights, after)


def test_parameter_groups_get_their_learning_rates(tmp_path):
    run = fit(_cfg(tmp_path, {"head_lr": 0.2, "backbone_lr": 0.02, "layer_decay": 0.5}))
    ckpt = torch.load(run.run_dir / "last.pt", weights_only=True)
    lrs = {g["part"]: g["lr"] for g in ckpt["optimizer"]["param_groups"]}
    # constant schedule: the lrs as set; each stage below the last at half the one above
    assert lrs == pytest.approx({"head": 0.2, "layer3": 0.02, "layer2": 0.01, "layer1": 0.005, "stem": 0.0025})


def test_lp_ft_probes_first_then_fine_tunes_with_a_fresh_schedule(tmp_path):
    cfg = _cfg(tmp_path, {"mode": "lp-ft", "lp_fraction": 0.5})
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "max_steps": 4, "schedule": {"name": "cosine"}})
    before = _source_state()
    seen = {}

    def watch(step, info):
        seen[step] = {k: v.clone() for k, v in info["model"].state_dict().items() if k.startswith("layer1.")}

    fit(cfg, callbacks=[watch])
    assert _identical(_prefix(before, "layer1."), seen[2])  # probing: the backbone stands still
    assert not _identical(_prefix(before, "layer1."), seen[4])
    plan = _plan(create_model("resnet20"), TransferConfig(mode="lp-ft"), 10)
    assert plan.phases == [5] and frozen_parts(plan.parts, "backbone") == plan.frozen_at(0)
    sched = build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), cfg.schedule, 10, 10, [5])
    factors = [sched.lr_lambdas[0](s) for s in range(10)]
    assert factors[0] == factors[5] == 1.0 and factors[4] < 0.2 and factors[9] < 0.2


def test_config_rejects_bad_transfer_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"transfer\.freeze"):
        TransferConfig(freeze="layer2")
    with pytest.raises(ConfigError, match=r"transfer\.bn"):
        TransferConfig(bn="sometimes")
    with pytest.raises(ConfigError, match="needs pretrained weights"):
        TrainConfig.from_dict({"transfer": {"mode": "finetune"}})
    with pytest.raises(ValueError, match=r"stages 1\.\.3"):
        frozen_parts(_parts(create_model("resnet20")), "stage4")


def test_labels_per_class_is_seeded_balanced_and_recorded(tmp_path):
    labels = load_dataset("digits", "train").labels
    a, b = balanced_indices(labels, 5, 10, seed=1), balanced_indices(labels, 5, 10, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, balanced_indices(labels, 5, 10, seed=2))
    assert torch.bincount(labels[a], minlength=10).tolist() == [5] * 10
    assert set(a.tolist()) <= set(balanced_indices(labels, 6, 10, seed=1).tolist())  # nested in K
    with pytest.raises(DatasetError, match="class 0 has only"):
        balanced_indices(torch.tensor([0, 1, 1]), 2, 2)

    cfg = _cfg(tmp_path, labels_per_class=3, min_epoch_images=64)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "seed": 1})
    run = fit(cfg)
    record = json.loads((run.run_dir / "train_subset.json").read_text())
    assert record["labels_per_class"] == 3 and record["seed"] == 1 and record["drawn_from"] == 1437
    assert record["index"] == balanced_indices(labels, 3, 10, seed=1).tolist()
    assert record["label"] == labels[record["index"]].tolist()
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["splits"]["train"] == 30 and summary["test"]["n"] == 360  # the test set stays whole


def test_classes_select_and_relabel():
    ds = load_dataset("digits", "test")
    keep = parse_classes("7,2-3", ds.classes)
    sub = select_classes(ds, keep)
    assert keep == [7, 2, 3] and sub.classes == ["7", "2", "3"]
    assert torch.equal(sub.labels, torch.tensor([keep.index(y) for y in ds.labels.tolist() if y in keep]))
    assert sub.source_index.tolist() == [i for i, y in enumerate(ds.labels.tolist()) if y in keep]
    with pytest.raises(DatasetError, match="'Sock'"):
        parse_classes("Sock", ds.classes)


def test_finetune_loads_a_plain_torchvision_layout_state_dict_through_model(tmp_path, capsys):
    # A torchvision resnet18 state_dict: 3-channel ImageNet stem, 1000 classes, no model config.
    sd = create_model("resnet18").state_dict()
    torch.save(sd, tmp_path / "resnet18.pth")
    args = ["finetune", str(tmp_path / "resnet18.pth"), "--data", "digits", "--max-steps", "1", "--no-progress"]
    args += ["--precision", "fp32", "--out", str(tmp_path), "--name", "tv", "--freeze", "stage2"]
    assert main(args) == 2
    assert "--model" in capsys.readouterr().err
    assert main([*args, "--model", "resnet18"]) == 0
    model = load_model(tmp_path / "tv")
    assert model.in_chans == 1 and model.num_classes == 10
    # 3 -> 1 channel: the RGB filters summed (timm's rule); frozen stage 1 exactly the file's.
    assert torch.equal(model.conv1.weight, sd["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(model.layer1[0].conv1.weight, sd["layer1.0.conv1.weight"])
    assert main(["finetune", str(tmp_path / "resnet18.pth"), "--model", "resnet20", "--data", "digits"]) == 2


def test_finetune_cli_from_a_tag_and_eval_of_a_class_subset_run(tmp_path, capsys):
    args = ["finetune", SOURCE, "--data", "digits", "--classes", "5-9", "--labels-per-class", "2"]
    args += ["--mode", "lp-ft", "--max-steps", "2", "--precision", "fp32", "--out", str(tmp_path), "--name", "r"]
    assert main([*args, "--no-progress"]) == 0
    config = (tmp_path / "r" / "config.yaml").read_text()
    assert "lp-ft" in config and "resnet20.fashion_mnist" in config
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--precision", "fp32"]) == 0  # the 5 classes, not all 10
    n = sum(1 for y in load_dataset("digits", "test").labels.tolist() if y >= 5)
    assert f"n={n}" in capsys.readouterr().out
    assert main(["finetune", "--resume", str(tmp_path / "r"), "--no-progress"]) == 0  # finished: nothing left
    assert main(["finetune", "--data", "digits"]) == 2  # no SOURCE


def test_embed_writes_features_labels_and_knn(tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main(["embed", SOURCE, "digits", "-o", str(out), "--knn", "3", "--labels-per-class", "4"]) == 0
    text = capsys.readouterr().out
    f = np.load(out)
    assert f["features_train"].shape == (40, 64) and f["features_test"].shape == (360, 64)
    assert f["features_train"].dtype == np.float32 and list(f["classes"]) == [str(i) for i in range(10)]
    assert f["labels_test"].tolist() == load_dataset("digits", "test").labels.tolist()
    model = load_model(SOURCE)
    ds = load_dataset("digits", "test")
    x = (ds.images[:4].float() / 255 - ds.mean[0]) / ds.std[0]
    with torch.no_grad():
        expect = model.forward_head(model.forward_features(x), pre_logits=True)
    assert np.allclose(f["features_test"][:4], expect.numpy(), atol=1e-5)
    pred = knn_predict(f["features_train"], f["labels_train"], f["features_test"], 3, 10)
    assert f"{100 * (pred == f['labels_test']).mean():.2f}%" in text
    assert main(["embed", SOURCE, "digits", "-o", str(out), "--knn", "3", "--splits", "test"]) == 2


def test_knn_matches_a_brute_force_vote():
    rng = np.random.default_rng(0)
    gallery, labels, queries = rng.normal(size=(30, 5)), rng.integers(0, 3, 30), rng.normal(size=(12, 5))
    pred = knn_predict(gallery.astype(np.float32), labels, queries.astype(np.float32), 4, 3)
    for q, p in zip(queries, pred, strict=True):
        sim = gallery @ q / (np.linalg.norm(gallery, axis=1) * np.linalg.norm(q))
        top = np.argsort(-sim)[:4]
        votes = np.zeros(3)
        for i in top:
            votes[labels[i]] += max(sim[i], 0) + 1e-6
        assert p == votes.argmax()


def test_plan_groups_skip_frozen_parts():
    model = create_model("resnet20")
    plan = _plan(model, TransferConfig(freeze="stage1", head_lr=1.0), 10)
    plan.freeze_for_good()
    groups = plan.param_groups(OptimConfig(decay_norm_and_bias=False), 0.1)
    parts = {g["part"] for g in groups}
    assert parts == {"layer2", "layer3", "head"}
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim <= 1 for p in g["params"]))
    assert math.isclose(next(g["lr"] for g in groups if g["part"] == "head"), 1.0)
