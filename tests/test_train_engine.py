"""The training engine end to end on a real (tiny) dataset: scikit-learn's 8x8 digits."""

import csv
import json

import pytest
import torch

from resnetkit import load_model
from resnetkit.artifacts import load_checkpoint
from resnetkit.tasks import evaluate
from resnetkit.train import TrainConfig, TrainingDiverged, TrainingInterrupted, fit


def _cfg(tmp_path, **kw):
    base = {
        "model": {"name": "resnet20"},
        "data": {"name": "digits", "batch_size": 64, "eval_batch_size": 256, "pad": 1, "flip": False},
        "optim": {"lr": 0.05},
        "schedule": {"name": "cosine", "warmup_steps": 2},
        "epochs": 2,
        "precision": "fp32",
        "out": str(tmp_path),
        "progress": False,
        "channels_last": False,
        "test_curve": True,
    }
    for k, v in kw.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) else v
    return TrainConfig.from_dict(base)


def test_fit_writes_a_complete_run_folder(tmp_path):
    result = fit(
        _cfg(tmp_path, run_name="r", ema_decay=0.9, data={"val_size": 97}),
        argv=["resnetkit", "train", "--data", "digits"],
    )
    run = tmp_path / "r"
    assert result.run_dir == run and result.steps == 2 * (1340 // 64)
    for name in ("config.yaml", "command.txt", "metrics.csv", "curves.png", "summary.json", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert {"train_loss", "train_top1", "eval_top1", "eval_top5", "lr", "images_per_second"} <= set(rows[0])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == result.steps and summary["precision"] == "fp32"
    assert summary["eval_set"] == "val" and summary["test_weights"] == "best.pt" and summary["test"]["n"] == 360
    assert summary["splits"] == {"train": 1340, "val": 97, "test": 360, "test_held_out": False}
    assert (run / "command.txt").read_text().startswith("resnetkit train --data digits")
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["model_cfg"]["name"] == "resnet20" and ckpt["dataset"]["in_chans"] == 1
    assert ckpt["eval_weights"] == "ema" and ckpt["step"] == result.steps


def test_checkpoint_alone_rebuilds_and_evaluates_the_model(tmp_path):
    result = fit(_cfg(tmp_path, run_name="r", data={"val_size": 97}))
    model = load_model(result.run_dir)
    assert not model.training and model.pretrained_cfg["name"] == "digits"
    from resnetkit.infer import evaluate_source

    # The run folder stands for best.pt, and the test split was measured once, on its weights.
    report = evaluate_source(result.run_dir, precision="fp32", out=tmp_path / "ev")
    assert report["n"] == 360 and report["top1"] == pytest.approx(result.test["top1"])
    assert (tmp_path / "ev" / "confusion.png").is_file()
    assert sum(map(sum, report["confusion"])) == 360


def test_resume_continues_exactly(tmp_path):
    fit(
        _cfg(
            tmp_path,
            run_name="a",
            max_steps=30,
            log_every=10,
            data={"erasing": 0.5},
            model={"overrides": {"drop_path_rate": 0.1}},
        )
    )

    def stop_at_17(step, _):
        if step == 17:
            raise KeyboardInterrupt

    cfg = _cfg(
        tmp_path,
        run_name="b",
        max_steps=30,
        log_every=10,
        data={"erasing": 0.5},
        model={"overrides": {"drop_path_rate": 0.1}},
    )
    with pytest.raises(TrainingInterrupted, match="Resume with: resnetkit train --resume"):
        fit(cfg, callbacks=[stop_at_17])
    assert load_checkpoint(tmp_path / "b")["step"] == 17
    resumed = fit(None, resume=tmp_path / "b")
    assert resumed.run_dir == tmp_path / "b" and resumed.steps == 30
    # The logging window interrupted at step 17 (rows every 10 steps) is restored, so every row
    # of steps.csv and metrics.csv is the uninterrupted run's (timings aside).
    assert _untimed(tmp_path / "a" / "steps.csv") == _untimed(tmp_path / "b" / "steps.csv")
    assert _untimed(tmp_path / "a" / "metrics.csv") == _untimed(tmp_path / "b" / "metrics.csv")
    a = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # Per-step rows: every 10 steps and at each epoch's end (22 steps), none lost or doubled by the resume.
    steps = {
        run: [int(float(r["step"])) for r in csv.DictReader((tmp_path / run / "steps.csv").open())] for run in "ab"
    }
    assert steps["a"] == steps["b"] == [10, 20, 22, 30]


def test_ema_warms_up_then_holds_its_decay():
    from resnetkit.train.ema import build_ema

    model = torch.nn.Linear(2, 1, bias=False)
    ema = build_ema(model, 0.999)
    with torch.no_grad():
        model.weight.zero_()
        ema.update_parameters(model)  # the first update copies
        model.weight.fill_(1.0)
        ema.update_parameters(model)  # decay min(0.999, 2/11): mostly the new weights
    assert ema.module.weight.flatten().tolist() == pytest.approx([9 / 11, 9 / 11])
    for _ in range(9000):  # (1 + n) / (10 + n) passes 0.999 at n = 8991: from there the decay holds at 0.999
        ema.update_parameters(model)
    with torch.no_grad():
        before = ema.module.weight.clone()
        model.weight.fill_(2.0)
        ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, before + 0.001 * (2.0 - before))
    assert build_ema(model, 0.0) is None
    with pytest.raises(ValueError, match=r"ema_decay=1.5"):
        build_ema(model, 1.5)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def poison(step, info):
        if step == 30:  # in epoch 2 (22 steps per epoch)
            info["model"].fc.weight.data.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="loss is nan"):
        fit(_cfg(tmp_path, run_name="n", epochs=3), callbacks=[poison])
    ckpt = load_checkpoint(tmp_path / "n" / "last.pt")
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_bf16_fast_path_trains(tmp_path):
    result = fit(_cfg(tmp_path, run_name="f", precision="auto", channels_last=True, max_steps=6))
    assert result.steps == 6 and torch.isfinite(torch.tensor(result.last["train_loss"]))


def test_evaluate_counts_top1_top5_and_confusion():
    logits = torch.tensor([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [1, 9, 0.5, 0, 0, 0]])
    labels = torch.tensor([0, 0, 2])
    model = torch.nn.Sequential()  # identity: the "images" are the logits
    r = evaluate(model, [(logits, labels)], num_classes=6)
    assert (r.top1, r.n) == (pytest.approx(1 / 3), 3)
    assert r.top5 == pytest.approx(2 / 3)  # the second row ranks its label 0 last
    assert r.confusion[0, 0] == 1 and r.confusion[0, 5] == 1 and r.confusion[2, 1] == 1


def _untimed(path):
    """A CSV's rows without the columns that measure time."""
    return [
        {k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in csv.DictReader(path.open())
    ]


def _metrics(run):
    return [{k: float(v) for k, v in r.items()} for r in csv.DictReader((run / "metrics.csv").open())]


def test_ctrl_c_stops_at_a_step_boundary_and_the_resume_is_exact(tmp_path):
    import os
    import signal

    fit(_cfg(tmp_path, run_name="a", max_steps=30))

    def ctrl_c(step, _):
        if step == 17:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, not an exception raised in a callback

    # As in a terminal (a shell's background job, CI's perhaps, starts with SIGINT ignored).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(TrainingInterrupted):
            fit(_cfg(tmp_path, run_name="b", max_steps=30), callbacks=[ctrl_c])
        assert load_checkpoint(tmp_path / "b")["step"] == 17
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, before)
    fit(None, resume=tmp_path / "b")
    a, b = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Epoch 1's training statistics cover its 22 steps, 17 of them from before the interruption.
    assert _metrics(tmp_path / "a")[0]["train_loss"] == pytest.approx(_metrics(tmp_path / "b")[0]["train_loss"])


def test_interrupt_during_evaluation_keeps_the_epochs_statistics(tmp_path, monkeypatch):
    from resnetkit.train.engine import Trainer

    fit(_cfg(tmp_path, run_name="a", epochs=2))
    real, calls = Trainer.evaluate, []

    def evaluate_then_interrupt(self, loader):
        calls.append(1)
        if len(calls) == 2:  # epoch 2's evaluation
            raise KeyboardInterrupt
        return real(self, loader)

    monkeypatch.setattr(Trainer, "evaluate", evaluate_then_interrupt)
    with pytest.raises(TrainingInterrupted):
        fit(_cfg(tmp_path, run_name="b", epochs=2))
    monkeypatch.setattr(Trainer, "evaluate", real)
    fit(None, resume=tmp_path / "b")
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert [r["epoch"] for r in b] == [1, 2]
    for key in ("train_loss", "train_top1", "eval_top1"):
        assert a[1][key] == pytest.approx(b[1][key]), key


def test_a_named_folder_holding_a_run_is_never_overwritten(tmp_path):
    fit(_cfg(tmp_path, run_name="r", max_steps=2))
    with pytest.raises(ValueError, match="already holds a run; continue it with --resume"):
        fit(_cfg(tmp_path, run_name="r", max_steps=2))
    # A folder that an attempt left before its first checkpoint is reused with clean logs.
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "steps.csv").write_text("step,train_loss\n50,1.0\n100,0.9\n")
    fit(_cfg(tmp_path, run_name="s", max_steps=3))
    assert [r["step"] for r in csv.DictReader((tmp_path / "s" / "steps.csv").open())] == ["3"]


def test_a_moved_run_resumes_in_its_new_folder(tmp_path):
    def stop(step, _):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        fit(_cfg(tmp_path / "old", run_name="r", max_steps=8), callbacks=[stop])
    (tmp_path / "old" / "r").rename(tmp_path / "moved")
    result = fit(None, resume=tmp_path / "moved")
    assert result.run_dir == tmp_path / "moved" and (tmp_path / "moved" / "summary.json").is_file()
    assert not (tmp_path / "old" / "r").exists()


def test_fine_tuning_starts_from_shipped_weights_or_a_checkpoint(tmp_path):
    from resnetkit import create_model

    # lr 0: the run changes no weight, so what it ends with is what it started from.
    frozen = {"optim": {"lr": 0.0, "weight_decay": 0.0}, "schedule": {"name": "constant", "warmup_steps": 0}}
    tuned = fit(_cfg(tmp_path, run_name="t", max_steps=1, model={"weights": "resnet20.fashion_mnist"}, **frozen))
    shipped = create_model("resnet20.fashion_mnist", pretrained=True)
    torch.testing.assert_close(tuned.model.conv1.weight, shipped.conv1.weight)
    torch.testing.assert_close(tuned.model.layer3[2].conv2.weight, shipped.layer3[2].conv2.weight)
    again = fit(_cfg(tmp_path, run_name="c", max_steps=1, model={"weights": str(tmp_path / "t" / "last.pt")}, **frozen))
    torch.testing.assert_close(again.model.fc.weight, shipped.fc.weight)


def test_linear_lr_scaling_and_label_smoothing_reach_the_trainer(tmp_path):
    from resnetkit.train.engine import Trainer

    cfg = _cfg(
        tmp_path, run_name="s", data={"batch_size": 128}, optim={"lr": 0.1, "scale_lr": True, "label_smoothing": 0.1}
    )
    trainer = Trainer(cfg)
    assert trainer.scheduler.base_lrs == [pytest.approx(0.1 * 128 / 256)] * len(trainer.optimizer.param_groups)
    assert trainer.task.criterion.label_smoothing == 0.1
    trainer.runlog.close()


def test_gradient_clipping_bounds_the_update(tmp_path):
    from resnetkit.train.engine import Trainer

    # Plain SGD at lr 1, one step: the update is the clipped gradient, so its norm is the clip.
    clip = 1e-3
    cfg = _cfg(
        tmp_path,
        run_name="c",
        max_steps=1,
        optim={"lr": 1.0, "momentum": 0.0, "weight_decay": 0.0, "clip_grad": clip},
        schedule={"name": "constant", "warmup_steps": 0},
    )
    trainer = Trainer(cfg)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.run()
    update = torch.stack(
        [(p.detach() - b).norm() for p, b in zip(trainer.model.parameters(), before, strict=True)]
    ).norm()
    assert update == pytest.approx(clip, rel=1e-3)


def test_trains_on_a_folder_of_images_and_the_checkpoint_evaluates_it(tmp_path):
    from PIL import Image

    from resnetkit.infer import evaluate_source

    # Two classes told apart by colour; train/ and val/ subfolders as torchvision's ImageFolder expects.
    for split, n in (("train", 8), ("val", 3)):
        for label, colour in (("blue", (0, 0, 200)), ("red", (200, 0, 0))):
            for i in range(n):
                path = tmp_path / "images" / split / label / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (20, 14), tuple(c + 5 * i for c in colour)).save(path)
    cfg = _cfg(
        tmp_path,
        run_name="f",
        max_steps=4,
        data={"name": str(tmp_path / "images"), "batch_size": 4, "image_size": 16, "workers": 0},
    )
    result = fit(cfg)
    assert result.steps == 4 and result.best["eval_top1"] is not None
    ckpt = load_checkpoint(result.run_dir / "last.pt")
    assert ckpt["dataset"]["classes"] == ["blue", "red"] and ckpt["dataset"]["image_size"] == [16, 16]
    report = evaluate_source(result.run_dir, precision="fp32")
    assert report["n"] == 6 and set(report["per_class"]) == {"blue", "red"}


def test_val_size_holds_out_a_fixed_split_and_the_test_set_is_measured_at_the_end(tmp_path):
    from resnetkit.tasks import Classification
    from resnetkit.train.distributed import DistContext
    from resnetkit.train.loaders import build_loaders

    cfg = _cfg(tmp_path, run_name="v", max_steps=2, data={"val_size": 60})
    loaders = build_loaders(cfg, DistContext(), torch.device("cpu"), Classification())
    assert len(loaders.eval.dataset) == 60 and len(loaders.test.dataset) == 360
    assert len(loaders.train.dataset) == 1797 - 360 - 60  # digits: 1437 train, 360 test
    again = build_loaders(cfg, DistContext(), torch.device("cpu"), Classification())
    assert torch.equal(loaders.eval.dataset.images, again.eval.dataset.images)  # seeded: the same split
    summary = json.loads((fit(cfg).run_dir / "summary.json").read_text())
    assert summary["test"]["n"] == 360


def test_deterministic_runs_repeat_bit_for_bit(tmp_path):
    runs = [fit(_cfg(tmp_path, run_name=f"d{i}", max_steps=3, deterministic=True)).model.state_dict() for i in range(2)]
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


@pytest.mark.slow
def test_compiled_training_writes_plain_checkpoints(tmp_path):
    # One evaluation of the 360 test images in one batch: each new batch shape is another compile.
    cfg = _cfg(tmp_path, run_name="c", max_steps=2, compile=True, test_curve=False, data={"eval_batch_size": 512})
    result = fit(cfg)
    ckpt = load_checkpoint(result.run_dir / "last.pt")
    assert not any(k.startswith("_orig_mod.") for k in ckpt["model"])
    assert load_model(result.run_dir).num_classes == 10


def test_without_a_validation_split_there_is_no_best_and_the_test_set_is_measured_once(tmp_path, monkeypatch, caplog):
    from resnetkit.train.engine import Trainer

    real, calls = Trainer.evaluate, []

    def counted(self, loader):
        calls.append(loader)
        return real(self, loader)

    monkeypatch.setattr(Trainer, "evaluate", counted)
    result = fit(_cfg(tmp_path, run_name="n", test_curve=False))
    run = tmp_path / "n"
    assert len(calls) == 1  # two epochs, and the test split measured once, at the end
    assert not (run / "best.pt").exists() and (run / "last.pt").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["eval_set"] is None and summary["best"] is None and summary["test_weights"] == "last.pt"
    assert summary["test"]["n"] == 360 and result.best == {}
    assert not any(k.startswith("eval_") for k in _metrics(run)[0])
    with caplog.at_level("INFO", logger="resnetkit.artifacts.runs"):
        load_model(run)
    assert "using last.pt" in caplog.text


def test_a_test_curve_never_chooses_a_checkpoint(tmp_path):
    result = fit(_cfg(tmp_path, run_name="c", test_curve=True))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert not (result.run_dir / "best.pt").exists() and summary["eval_set"] == "test"
    # The final test measurement is the last epoch's curve point: the same weights.
    assert summary["test"]["top1"] == pytest.approx(_metrics(result.run_dir)[-1]["eval_top1"])


def test_a_flat_image_folder_holds_out_a_seeded_test_split(tmp_path, caplog):
    from PIL import Image

    for label, colour in (("blue", (0, 0, 200)), ("red", (200, 0, 0))):
        for i in range(10):
            path = tmp_path / "flat" / label / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12), tuple(c + 5 * i for c in colour)).save(path)
    cfg = _cfg(
        tmp_path,
        run_name="f",
        max_steps=2,
        test_curve=False,
        data={"name": str(tmp_path / "flat"), "batch_size": 4, "image_size": 12, "workers": 0, "test_size": 0.2},
    )
    from resnetkit.tasks import Classification
    from resnetkit.train.distributed import DistContext
    from resnetkit.train.loaders import build_loaders

    with caplog.at_level("INFO", logger="resnetkit.train"):
        loaders = build_loaders(cfg, DistContext(), torch.device("cpu"), Classification())
    assert "held out as the test set" in caplog.text
    train, test = loaders.train.dataset, loaders.test.dataset
    assert len(test) == 4 and len(train) == 16 and sorted(test.targets) == [0, 0, 1, 1]  # stratified
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples} and not test.train
    again = build_loaders(cfg, DistContext(), torch.device("cpu"), Classification())
    assert again.test.dataset.samples == test.samples
    summary = json.loads((fit(cfg).run_dir / "summary.json").read_text())
    assert summary["splits"]["test_held_out"] and summary["test"]["n"] == 4


def _folder(root, per_class=6, classes=("blue", "red")):
    from PIL import Image

    for k, label in enumerate(classes):
        for i in range(per_class):
            path = root / label / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12), (200 * k, 0, 5 * i)).save(path)
    return root


def test_alternate_flips_train_in_memory_and_are_refused_for_a_streamed_folder(tmp_path):
    from resnetkit.tasks import Classification
    from resnetkit.train import ConfigError
    from resnetkit.train.distributed import DistContext
    from resnetkit.train.loaders import build_loaders

    cfg = _cfg(tmp_path, run_name="alt", max_steps=3, data={"flip": True, "flip_mode": "alternate"})
    loaders = build_loaders(cfg, DistContext(), torch.device("cpu"), Classification())
    assert loaders.train.augment.flip_mode == "alternate" and loaders.train._first_flips is not None
    assert loaders.eval.augment is None  # evaluation is never flipped
    assert fit(cfg).steps == 3
    folder = {"name": str(_folder(tmp_path / "imgs")), "batch_size": 4, "image_size": 12, "workers": 0}
    refused = r"data\.flip_mode=alternate: needs a dataset held in memory; .*imgs is read as it trains"
    with pytest.raises(ConfigError, match=refused):
        fit(_cfg(tmp_path, run_name="alt-folder", max_steps=1, data={**folder, "flip": True, "flip_mode": "alternate"}))


def test_corrupt_images_are_found_before_training_and_refused_or_skipped(tmp_path):
    from resnetkit.data import DatasetError

    root = _folder(tmp_path / "imgs")
    (root / "red" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "blue" / "9.png").write_bytes(b"")
    cfg = {"name": str(root), "batch_size": 4, "image_size": 12, "workers": 0, "test_size": 0.25}
    with pytest.raises(DatasetError, match=r"2 of 13 images in .* cannot be read: .*9.png.*3.png.*--skip-bad-images"):
        fit(_cfg(tmp_path, run_name="bad", max_steps=1, test_curve=False, data=cfg))
    assert not (tmp_path / "bad" / "config.yaml").exists()  # refused before the run began
    result = fit(_cfg(tmp_path, run_name="skip", max_steps=2, test_curve=False, data={**cfg, "skip_bad_images": True}))
    listed = (result.run_dir / "skipped_images.tsv").read_text().splitlines()
    assert listed[0] == "path\treason" and sorted(line.split("\t")[0] for line in listed[1:]) == sorted(
        [str(root / "blue" / "9.png"), str(root / "red" / "3.png")]
    )
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["splits"]["train"] + summary["splits"]["test"] == 11


def test_a_folder_with_one_class_is_refused(tmp_path):
    root = _folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="only 1 class folder/label; classification needs at least two classes"):
        fit(_cfg(tmp_path, run_name="one", max_steps=1, data={"name": str(root), "image_size": 12, "workers": 0}))
