"""The engine's hooks (called in their documented order) and gradient accumulation (the same
optimization as the whole batch), on scikit-learn's 8x8 digits."""

import contextlib
import csv

import pytest
import torch

from resnetkit.artifacts import load_checkpoint
from resnetkit.cli import build_parser, main
from resnetkit.train import ConfigError, TrainConfig, fit
from resnetkit.train.hooks import HookBase


def _cfg(tmp_path, **kw):
    base = {
        "model": {"name": "resnet20"},
        "data": {"name": "digits", "batch_size": 32, "eval_batch_size": 256, "pad": 1, "flip": False},
        "optim": {"lr": 0.05},
        "schedule": {"name": "cosine", "warmup_steps": 2},
        "epochs": 2,
        "precision": "fp32",
        "out": str(tmp_path),
        "progress": False,
        "channels_last": False,
    }
    for k, v in kw.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) else v
    return TrainConfig.from_dict(base)


class Recorder(HookBase):
    """Writes down each call with what the trainer says at that moment."""

    def __init__(self):
        self.calls = []

    def _note(self, point, **seen):
        self.calls.append((point, self.trainer.state.epoch, self.trainer.state.step, seen))

    def before_train(self):
        self._note("before_train", hooks=[type(h).__name__ for h in self.trainer.hooks])

    def before_epoch(self):
        self._note("before_epoch")

    def before_step(self):
        self._note("before_step")

    def after_step(self):
        self._note("after_step", row=self.trainer.step_metrics is not None)

    def after_epoch(self):
        t = self.trainer
        saved = load_checkpoint(t.run_dir)["epoch"]
        self._note("after_epoch", evaluated=t.evaluation is not None, rows=len(t.runlog.rows), saved=saved)

    def after_train(self):
        self._note("after_train", test=self.trainer.test is not None)


def test_hooks_are_called_in_the_documented_order(tmp_path):
    # 10 labels of each class: 100 images, 3 steps of 32 an epoch, evaluated on the test split.
    recorder, steps = Recorder(), []
    cfg = _cfg(tmp_path, run_name="h", test_curve=True, log_every=2, data={"labels_per_class": 10})
    fit(cfg, callbacks=[lambda step, info: steps.append(step)], hooks=[recorder])

    calls = recorder.calls
    assert calls[0][3]["hooks"] == [
        "Bf16ConvGuard",
        "MemoryGuard",
        "EMAUpdate",
        "NaNGuard",
        "EvalHook",
        "MetricsWriter",
        "Checkpointer",
        "Progress",
        "StepCallbacks",
        "Recorder",
    ]
    per_epoch = ["before_epoch"] + ["before_step", "after_step"] * 3 + ["after_epoch"]
    assert [point for point, *_ in calls] == ["before_train", *per_epoch, *per_epoch, "after_train"]
    # (point, epoch, step) as each hook sees them: after_step counts the step; after_epoch comes
    # after the built-in hooks, so the epoch is evaluated, on record and checkpointed (closed).
    assert [c[:3] for c in calls[1:9]] == [
        ("before_epoch", 0, 0),
        ("before_step", 0, 0),
        ("after_step", 0, 1),
        ("before_step", 0, 1),
        ("after_step", 0, 2),
        ("before_step", 0, 2),
        ("after_step", 0, 3),
        ("after_epoch", 1, 3),
    ]
    # A steps.csv row every 2 steps and at each epoch's end: 2, 3, 4, 6.
    assert [c[2] for c in calls if c[0] == "after_step" and c[3]["row"]] == [2, 3, 4, 6]
    assert [c[3] for c in calls if c[0] == "after_epoch"] == [
        {"evaluated": True, "rows": 1, "saved": 1},
        {"evaluated": True, "rows": 2, "saved": 2},
    ]
    assert calls[-1] == ("after_train", 2, 6, {"test": True})
    assert steps == [1, 2, 3, 4, 5, 6]  # the step callbacks, a hook among the others


def test_a_resumed_run_calls_its_hooks_from_where_it_stopped(tmp_path):
    def stop(step, _):
        if step == 4:
            raise KeyboardInterrupt

    cfg = _cfg(tmp_path, run_name="r", data={"labels_per_class": 10})
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, callbacks=[stop])
    recorder = Recorder()
    fit(None, resume=tmp_path / "r", hooks=[recorder])
    points = [(point, epoch, step) for point, epoch, step, _ in recorder.calls]
    assert points[:2] == [("before_train", 1, 4), ("before_epoch", 1, 4)]
    assert points[2:6] == [("before_step", 1, 4), ("after_step", 1, 5), ("before_step", 1, 5), ("after_step", 1, 6)]
    assert points[6:] == [("after_epoch", 2, 6), ("after_train", 2, 6)]


def test_gradient_accumulation_is_the_whole_batch(tmp_path):
    # GroupNorm normalizes each image on its own, so the loss of the batch is the mean of per-image
    # losses and two halves weighted 1/2 give the gradient of the whole. With BatchNorm they would
    # not: each micro-batch is normalized by its own statistics, a different function of the data.
    # The loader draws the same batches of 64 in both runs (accumulation slices each in the step).
    common = {
        "model": {"overrides": {"norm_layer": "groupnorm"}},
        "data": {"batch_size": 64},
        "optim": {"momentum": 0.9, "weight_decay": 5e-4},
        "schedule": {"name": "constant", "warmup_steps": 0},
        # Two steps: the second starts from zeroed gradients and the first's momentum. (Rounding
        # alone moves the weights by ~1e-7 a step; from the third, this early training amplifies it
        # past 1e-4, in a run perturbed by 1e-8 as much as in an accumulated one.)
        "max_steps": 2,
        "log_every": 1,
    }

    class Start(HookBase):
        def before_train(self):
            self.weights = {k: v.clone() for k, v in self.trainer.model.state_dict().items()}

    start = Start()
    whole = fit(_cfg(tmp_path, run_name="whole", **common), hooks=[start])
    sliced = fit(_cfg(tmp_path, run_name="sliced", grad_accum_steps=4, **common))
    assert whole.steps == sliced.steps == 2  # optimizer steps
    a, b = whole.model.state_dict(), sliced.model.state_dict()
    assert all(not torch.equal(a[k], start.weights[k]) for k in a if k.endswith("conv1.weight"))  # trained
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    # The logged training loss is the whole batch's mean loss, step by step.
    rows = {r: list(csv.DictReader((tmp_path / r / "steps.csv").open())) for r in ("whole", "sliced")}
    for x, y in zip(rows["whole"], rows["sliced"], strict=True):
        assert float(y["train_loss"]) == pytest.approx(float(x["train_loss"]), rel=1e-5)


def test_ddp_synchronizes_only_the_last_micro_batch(tmp_path):
    from resnetkit.train.engine import Trainer

    class FakeDDP:
        """Says, at each backward, whether it runs inside ``no_sync`` (DDP skips its all-reduce there)."""

        unsynced = False

        @contextlib.contextmanager
        def no_sync(self):
            self.unsynced = True
            yield
            self.unsynced = False

    trainer = Trainer(_cfg(tmp_path, run_name="d", grad_accum_steps=4, data={"batch_size": 64}))
    trainer.ddp = fake = FakeDDP()
    seen = []
    trainer.model.fc.weight.register_hook(lambda grad: seen.append(fake.unsynced))
    x, y = trainer.task.make_batch(next(iter(trainer.data.train)), trainer.device)
    trainer._step(x, y)
    assert seen == [True, True, True, False]
    assert trainer.scheduler.last_epoch == 1  # one optimizer and scheduler step
    trainer.runlog.close()


def test_grad_accum_steps_is_checked_and_reaches_the_config(tmp_path, capsys):
    with pytest.raises(ConfigError, match="grad_accum_steps: must be at least 1, got 0"):
        _cfg(tmp_path, grad_accum_steps=0)
    with pytest.raises(ConfigError, match=r"data\.batch_size 30 does not divide into grad_accum_steps=4"):
        _cfg(tmp_path, grad_accum_steps=4, data={"batch_size": 30})
    from resnetkit.cli.train import _train_config

    args = build_parser().parse_args(["train", "--batch-size", "96", "--grad-accum-steps", "3"])
    assert _train_config(args).grad_accum_steps == 3
    args = build_parser().parse_args(
        ["finetune", "resnet20.fashion_mnist", "--data", "digits", "--grad-accum-steps", "2"]
    )
    assert args.grad_accum_steps == 2
    assert main(["train", "--data", "digits", "--batch-size", "64", "--grad-accum-steps", "5"]) == 2
    assert "does not divide into grad_accum_steps=5" in capsys.readouterr().err
