"""``fit``: train a model from a ``TrainConfig``, evaluate it every epoch, keep checkpoints."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..models import create_model
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .distributed import DistContext, elastic_run_name, init_distributed, restart_count
from .ema import build_ema
from .evaluate import EvalResult, evaluate
from .loaders import build_loaders
from .optim import build_optimizer, build_scheduler
from .plots import plot_curves
from .precision import Precision
from .run import RunLog, new_run_dir
from .syncbn import convert_sync_batchnorm

log = logging.getLogger("resnetkit.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    def __init__(self, run_dir: Path, step: int):
        super().__init__(f"interrupted at step {step}; resume with: resnetkit train --resume {run_dir}")
        self.run_dir, self.step = run_dir, step


@dataclass
class FitResult:
    run_dir: Path
    best: dict
    last: dict
    test: dict | None
    steps: int
    seconds: float
    images_per_second: float
    model: nn.Module = field(repr=False, default=None)  # the trained model (its EMA, if kept), eval mode


# Called after every optimizer step with the step number and {"loss", "epoch", "model"}.
StepCallback = Callable[[int, dict], None]


def build_model(cfg: TrainConfig, meta: dict) -> nn.Module:
    model = create_model(cfg.model.name, num_classes=len(meta["classes"]), in_chans=meta["in_chans"], **cfg.model.overrides)
    if cfg.model.weights:
        from ..loading import load_pretrained_into

        load_pretrained_into(model, cfg.model.weights)
    return model


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def fit(cfg: TrainConfig | None, resume: str | Path | None = None, callbacks: Sequence[StepCallback] = (),
        argv: list[str] | None = None) -> FitResult:
    """Train as ``cfg`` says. ``resume`` (a run folder or checkpoint) continues that run exactly
    where its last checkpoint stopped, mid-epoch included; the run folder is the same."""
    ckpt = load_checkpoint(resume) if resume else None
    if ckpt is not None:
        cfg = TrainConfig.from_dict(ckpt["config"])
    if cfg is None:
        raise ValueError("fit needs a config or a run to resume")
    if ckpt is None:
        cfg, ckpt = _elastic_restart(cfg)
    trainer = Trainer(cfg, ckpt, callbacks, argv)
    finished = False
    try:
        result = trainer.run()
        finished = True
        return result
    finally:
        trainer.ctx.close(finished)


def _elastic_restart(cfg: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """Under torchrun, name the run folder so it survives restarts, and after a restart (a worker
    died: ``--max-restarts``) continue from that folder's last checkpoint."""
    name = cfg.run_name or elastic_run_name()
    if name is None:
        return cfg, None
    cfg = dataclasses.replace(cfg, run_name=name)
    last = Path(cfg.out) / name / "last.pt"
    if restart_count() > 0 and last.is_file():
        log.info("torchrun restart %d: resuming from %s", restart_count(), last)
        return cfg, load_checkpoint(last)
    return cfg, None


class _Window:
    """Loss sum, correct and seen images since the last read, kept on the device so that adding
    a step never waits for it. ``totals`` restores what a checkpoint saved mid-epoch."""

    def __init__(self, device: torch.device, totals: list[float] | None = None):
        self.totals = torch.tensor(totals or [0.0, 0.0, 0.0], dtype=torch.float64, device=device)
        self.restored = float(self.totals[2])
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.totals += torch.stack([loss.detach().double() * len(labels), (logits.argmax(1) == labels).sum().double(),
                                    self.totals.new_tensor(float(len(labels)))])

    def read(self, ctx: DistContext) -> dict:
        """Loss, top-1 and images/s over every process (a collective: all ranks call it)."""
        loss, correct, seen = ctx.all_reduce_sum(self.totals).tolist()
        n = max(seen, 1.0)
        new = seen - ctx.world_size * self.restored  # images/s of this session only
        return {"train_loss": loss / n, "train_top1": correct / n,
                "images_per_second": new / max(time.perf_counter() - self.start, 1e-9)}


class Trainer:
    """One run: the model, data, optimizer, schedule, precision and EMA that a config describes
    (restored from ``ckpt`` when resuming), the run folder, and the loop over epochs."""

    def __init__(self, cfg: TrainConfig, ckpt: dict | None = None, callbacks: Sequence[StepCallback] = (),
                 argv: list[str] | None = None):
        self.cfg, self.callbacks = cfg, list(callbacks)
        self.ctx, self.device = init_distributed(cfg.device)
        seed_everything(cfg.seed, cfg.deterministic)
        self.data = build_loaders(cfg, self.ctx, self.device)
        self.model = build_model(cfg, self.data.meta)
        if cfg.sync_bn and self.ctx.enabled:
            self.model = convert_sync_batchnorm(self.model, self.device)
        self.model.to(self.device, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
        torch.manual_seed(cfg.seed + 1 + self.ctx.rank)  # per-rank stream for dropout / stochastic depth

        steps_per_epoch = len(self.data.train)
        if steps_per_epoch == 0:
            raise ValueError(f"the training set has fewer images than one batch ({cfg.data.batch_size})")
        self.total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
        self.epochs = math.ceil(self.total_steps / steps_per_epoch)
        # Linear scaling rule (Goyal et al. 2017, arXiv:1706.02677, §2.1): lr grows with the global batch.
        lr = cfg.optim.lr * (cfg.data.batch_size / 256 if cfg.optim.scale_lr else 1)
        self.optimizer = build_optimizer(self.model, cfg.optim, lr)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.total_steps, steps_per_epoch)
        self.precision = Precision(cfg.precision, self.device)
        self.ema = build_ema(self.model, cfg.ema_decay)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
        self.train_model = self.model
        if self.ctx.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)

        self.state = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "best": None, "seconds": 0.0}
        self._epoch_stats = _Window(self.device)
        self._resumed_totals: list[float] | None = None
        self._stop = False
        if ckpt is not None:
            self._restore(ckpt)
            run_dir = Path(ckpt["run_dir"])
        elif self.ctx.is_main:
            run_dir = new_run_dir(cfg.out, cfg.run_name, cfg.model.name, cfg.data.name)
        else:
            run_dir = Path(cfg.out)
        self.run_dir = Path(self.ctx.broadcast(str(run_dir)))
        self._check_same_start()
        self.runlog = RunLog(self.run_dir, enabled=self.ctx.is_main)
        if ckpt is None:
            self.runlog.start(cfg.to_dict(), argv)
        else:
            self.runlog.load_rows(self.state["step"])

    @property
    def evaluator(self) -> nn.Module:
        """What is evaluated and kept as "the" model: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.precision.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.state.update({k: ckpt[k] for k in self.state if k in ckpt})
        own = min(self.ctx.rank, len(ckpt["rng"]) - 1)
        set_rng_state(ckpt["rng"][own])
        if ckpt.get("epoch_totals") and self.state["batch_in_epoch"]:
            self._resumed_totals = ckpt["epoch_totals"][own]

    def _check_same_start(self) -> None:
        """Every rank must resume from the same checkpoint: each reads it from its own disk, so on
        several machines ``--out`` has to be on a filesystem they share."""
        starts = self.ctx.gather(self.state["step"])
        if len(set(starts)) > 1:
            raise RuntimeError(f"processes start from different steps {starts}: each read its checkpoint from its own "
                               f"disk; on several machines put --out ({self.cfg.out}) on a shared filesystem")

    def checkpoint(self, name: str) -> None:
        # Every rank's RNG state and partial epoch statistics, so each resumes its own stream.
        rngs = self.ctx.gather(rng_state())
        totals = self.ctx.gather(self._epoch_stats.totals.tolist())
        if not self.ctx.is_main:
            return
        save_checkpoint(
            self.run_dir / f"{name}.pt", model_cfg=self.model.model_cfg, model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            scaler=self.precision.scaler.state_dict(), ema=self.ema.state_dict() if self.ema is not None else None,
            eval_weights="ema" if self.ema is not None else "model", config=self.cfg.to_dict(),
            dataset=self.data.meta, rng=rngs, epoch_totals=totals, run_dir=str(self.run_dir), **self.state,
        )

    def evaluate(self, loader) -> EvalResult:
        # Each rank updated its own BN statistics from its own shard; evaluation must see one model.
        self.ctx.broadcast_buffers(self.evaluator)
        return evaluate(self.evaluator, loader, len(self.data.meta["classes"]), self.precision.autocast,
                        self.cfg.tta_flip, self.device, self.ctx.all_reduce_sum)

    def run(self) -> FitResult:
        log.info("run folder %s | %s on %s (%s), %d process(es) | %d steps of %d images", self.run_dir,
                 self.cfg.model.name, self.device, self.precision.mode, self.ctx.world_size, self.total_steps,
                 self.cfg.data.batch_size)
        try:
            with self._stop_on_ctrl_c():
                for epoch in range(self.state["epoch"], self.epochs):
                    self._epoch(epoch)
                    if self.state["step"] >= self.total_steps:
                        break
        except KeyboardInterrupt:
            self.checkpoint("last")
            self.runlog.close()
            raise TrainingInterrupted(self.run_dir, self.state["step"]) from None
        # Over every session of the run (a resumed run included), training and evaluation.
        seconds = self.state["seconds"]
        rate = self.state["step"] * self.cfg.data.batch_size / max(seconds, 1e-9)
        classes = self.data.meta["classes"]
        test = self.evaluate(self.data.test).as_dict(classes) if self.data.test is not None else None
        last = self.runlog.rows[-1] if self.runlog.rows else {}
        if self.ctx.is_main:
            plot_curves(self.runlog.rows, self.run_dir / "curves.png", self.runlog.step_rows)
            self.runlog.write_json("summary.json", {
                "model": self.cfg.model.name, "data": self.cfg.data.name, "best": self.state["best"], "last": last,
                "test": test, "steps": self.state["step"], "seconds": seconds, "images_per_second": rate,
                "precision": self.precision.mode, "device": str(self.device), "processes": self.ctx.world_size,
                "torch": torch.__version__,
            })
        self.runlog.close()
        return FitResult(self.run_dir, self.state["best"] or {}, last, test, self.state["step"], seconds, rate,
                         self.evaluator.eval())

    @contextlib.contextmanager
    def _stop_on_ctrl_c(self):
        """Ctrl-C asks to stop at the next step boundary, so the checkpoint holds a whole step (a
        second Ctrl-C stops at once). Under torchrun the agent handles signals instead."""
        if self.ctx.enabled or threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            self._stop = True
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _epoch(self, epoch: int) -> None:
        """Train one epoch, evaluate, log and checkpoint."""
        self.state["epoch"] = epoch
        epoch_start = time.perf_counter()
        self.data.train.set_epoch(epoch)
        stats = self._train_epoch(epoch)
        result = self.evaluate(self.data.eval)
        state = self.state
        state.update(epoch=epoch + 1, batch_in_epoch=0, seconds=state["seconds"] + time.perf_counter() - epoch_start)
        row = {"epoch": epoch + 1, "step": state["step"], "seconds": state["seconds"], **stats,
               "lr": self.optimizer.param_groups[0]["lr"],
               "eval_loss": result.loss, "eval_top1": result.top1, "eval_top5": result.top5}
        improved = state["best"] is None or result.top1 > state["best"]["eval_top1"]
        if improved:
            state["best"] = row
        self.runlog.log_epoch(row)
        self.checkpoint("last")
        if improved:
            self.checkpoint("best")
        log.info("epoch %d/%d  loss %.4f  train %.2f%%  eval %.2f%% (best %.2f%%)  lr %.4g  %.0f img/s",
                 epoch + 1, self.epochs, stats["train_loss"], 100 * stats["train_top1"], 100 * result.top1,
                 100 * state["best"]["eval_top1"], row["lr"], stats["images_per_second"])
        if self._stop:
            raise KeyboardInterrupt

    def _train_epoch(self, epoch: int) -> dict:
        from tqdm import tqdm

        cfg, state, loader = self.cfg, self.state, self.data.train
        self.model.train()
        skip = state["batch_in_epoch"]
        self._epoch_stats = epoch_stats = _Window(self.device, self._resumed_totals if skip else None)
        self._resumed_totals = None
        window = _Window(self.device)
        bar = tqdm(total=min(len(loader), self.total_steps - state["step"] + skip), initial=skip, leave=False,
                   unit="step", desc=f"epoch {epoch + 1}/{self.epochs}",
                   disable=None if (cfg.progress and self.ctx.is_main) else True)
        window_steps = 0
        for i, (x, y) in enumerate(loader):
            if i < skip:  # resuming mid-epoch: the loader replays the same order and augmentations
                continue
            if state["step"] >= self.total_steps:
                break
            loss, logits = self._step(x, y)
            state["step"] += 1
            state["batch_in_epoch"] = i + 1
            epoch_stats.add(loss, logits, y)
            window.add(loss, logits, y)
            window_steps += 1
            if state["step"] % cfg.log_every == 0 or i + 1 == len(loader):
                self._log_window(window, epoch + (i + 1) / len(loader), bar)
                window, window_steps = _Window(self.device), 0
            bar.update(1)
            for cb in self.callbacks:
                cb(state["step"], {"loss": loss.detach(), "epoch": epoch, "model": self.model})
            if self._stop:
                raise KeyboardInterrupt
        if window_steps:  # max_steps ended the run mid-epoch
            self._log_window(window, epoch + state["batch_in_epoch"] / len(loader), bar)
        bar.close()
        stats = epoch_stats.read(self.ctx)
        _check_finite(stats["train_loss"], state["step"], self.optimizer)
        return stats

    def _log_window(self, window: _Window, epoch: float, bar) -> None:
        stats = window.read(self.ctx)
        # Summed over every process, so all ranks stop together and none waits in a collective.
        _check_finite(stats["train_loss"], self.state["step"], self.optimizer)
        self.runlog.log_step({"step": self.state["step"], "epoch": epoch, **stats,
                              "lr": self.optimizer.param_groups[0]["lr"]})
        bar.set_postfix(loss=f"{stats['train_loss']:.3f}", acc=f"{stats['train_top1']:.1%}",
                        img_s=f"{stats['images_per_second']:.0f}")

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step, on the one precision path (the scaler is a no-op unless fp16)."""
        scaler = self.precision.scaler
        with self.precision.autocast():
            logits = self.train_model(x)
            loss = self.criterion(logits.float(), y)
        scaler.scale(loss).backward()
        if self.cfg.optim.clip_grad:
            scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        scaler.step(self.optimizer)
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss, logits


def _check_finite(loss: float, step: int, optimizer) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"loss is {loss} at step {step} (lr {optimizer.param_groups[0]['lr']:.4g}); stopped, and the last "
            "good checkpoint is kept. Lower --lr, add warmup (--set schedule.warmup_epochs=1) or clip gradients "
            "(--set optim.clip_grad=1.0)."
        )


__all__ = ["FitResult", "StepCallback", "Trainer", "TrainingDiverged", "TrainingInterrupted", "build_model", "fit"]
