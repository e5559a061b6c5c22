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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts import (
    Checkpoint,
    RunLog,
    atomic_write_text,
    checkpoint_weights,
    ensure_writable,
    load_checkpoint,
    load_pretrained_into,
    new_run_dir,
    remove_stale_temps,
    save_checkpoint,
)
from ..models import ResNetBase
from ..tasks import Evaluation, Task, get_task
from .config import TrainConfig
from .distributed import DistContext, elastic_run_name, init_distributed, restart_count
from .ema import build_ema
from .loaders import build_loaders
from .optim import build_optimizer, build_scheduler
from .precision import Precision
from .rng import rng_state, set_rng_state
from .syncbn import convert_sync_batchnorm
from .transfer import TransferPlan

log = logging.getLogger("resnetkit.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the run at a step boundary, after a checkpoint."""

    def __init__(self, run_dir: Path, step: int, signum: int = signal.SIGINT):
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} at step {step}; last.pt is saved. Resume with: resnetkit train --resume {run_dir}"
        )
        self.run_dir, self.step, self.signum = run_dir, step, signum


@dataclass
class FitResult:
    run_dir: Path
    best: dict
    last: dict
    test: dict | None
    steps: int
    seconds: float
    images_per_second: float
    model: nn.Module | None = field(repr=False, default=None)  # the model the run folder stands for, eval mode
    test_weights: str = "last.pt"  # the checkpoint whose weights ``test`` measured


# Called after every optimizer step with the step number and {"loss", "epoch", "model"}.
StepCallback = Callable[[int, dict], None]


def build_task(cfg: TrainConfig) -> Task:
    """The config's task with the options it takes (label smoothing, flip TTA, ...)."""
    return get_task(cfg.task).from_options(
        label_smoothing=cfg.optim.label_smoothing, tta_flip=cfg.tta_flip, scenes=cfg.data.scenes, seed=cfg.seed
    )


def build_model(cfg: TrainConfig, meta: dict, task: Task) -> nn.Module:
    model = task.build_model(cfg.model.name, meta, cfg.model.overrides)
    if cfg.model.weights:
        # Fine-tuning to new classes wants a fresh head even where the source's has their number.
        new_head = cfg.transfer.mode != "none" and cfg.transfer.new_head
        load_pretrained_into(model, cfg.model.weights, new_head=new_head)
    return model


def transfer_plan(cfg: TrainConfig, model: nn.Module, total_steps: int) -> TransferPlan | None:
    """The run's transfer plan, or None when it trains every part at one lr as usual."""
    t = cfg.transfer
    if t.mode == "none" and t.freeze == "none" and t.head_lr is t.backbone_lr is t.layer_decay is None:
        return None
    if not isinstance(model, ResNetBase):
        raise ValueError(f"transfer settings need a resnetkit classifier; {cfg.model.name} is a {type(model).__name__}")
    return TransferPlan(model, t, total_steps)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def fit(
    cfg: TrainConfig | None,
    resume: str | Path | None = None,
    callbacks: Sequence[StepCallback] = (),
    argv: list[str] | None = None,
) -> FitResult:
    """Train as ``cfg`` says. ``resume`` (a run folder or checkpoint) continues that run exactly
    where its last checkpoint stopped, mid-epoch included; the run folder is the same."""
    ckpt = _resume_checkpoint(Path(resume)) if resume else None
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


def _resume_checkpoint(resume: Path) -> Checkpoint:
    """The checkpoint to resume from; a run stopped before its first one says how to start again."""
    if resume.is_dir() and not (resume / "last.pt").is_file() and (resume / "config.yaml").is_file():
        command = (resume / "command.txt").read_text().strip() if (resume / "command.txt").is_file() else None
        again = f"run it again: {command}" if command else f"start it again with --config {resume / 'config.yaml'}"
        raise ValueError(
            f"{resume}: the run stopped before its first checkpoint, so there is nothing to resume; {again} "
            "(--checkpoint-every STEPS or --set checkpoint_minutes=N save more often)"
        )
    return load_checkpoint(resume)


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
    """Sums of the task's step statistics and the sample count since the last read, kept on the
    device so that adding a step never waits for it. ``totals`` restores what a checkpoint saved
    mid-epoch."""

    def __init__(self, device: torch.device, names: Sequence[str], totals: list[float] | None = None):
        self.names = tuple(names)
        self.totals = torch.tensor(totals or [0.0] * (len(self.names) + 1), dtype=torch.float64, device=device)
        self.restored = float(self.totals[-1])
        self.start = time.perf_counter()

    def add(self, stats: torch.Tensor, n: int) -> None:
        self.totals += torch.cat([stats.to(self.totals), self.totals.new_tensor([float(n)])])

    def read(self, ctx: DistContext) -> dict[str, float]:
        """``train_<stat>`` per sample and images/s over every process (a collective: all ranks call it)."""
        *sums, seen = ctx.all_reduce_sum(self.totals).tolist()
        n = max(seen, 1.0)
        new = seen - ctx.world_size * self.restored  # images/s of this session only
        out = {f"train_{name}": total / n for name, total in zip(self.names, sums, strict=True)}
        out["images_per_second"] = new / max(time.perf_counter() - self.start, 1e-9)
        return out


class Trainer:
    """One run: the task, model, data, optimizer, schedule, precision and EMA that a config
    describes (restored from ``ckpt`` when resuming), the run folder, and the loop over epochs."""

    def __init__(
        self,
        cfg: TrainConfig,
        ckpt: Checkpoint | None = None,
        callbacks: Sequence[StepCallback] = (),
        argv: list[str] | None = None,
    ):
        self.cfg, self.callbacks = cfg, list(callbacks)
        self.task = build_task(cfg)
        self.ctx, self.device = init_distributed(cfg.device)
        if self.ctx.is_main:  # before any data is read or model built
            ensure_writable(Path(ckpt["run_dir"]) if ckpt is not None else Path(cfg.out))
        seed_everything(cfg.seed, cfg.deterministic)
        self.data = build_loaders(cfg, self.ctx, self.device, self.task)
        self.model = build_model(cfg, self.data.meta, self.task)
        if cfg.sync_bn and self.ctx.enabled:
            self.model = convert_sync_batchnorm(self.model, self.device)
        memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
        # nn.Module.to takes memory_format (documented); PyTorch's stubs leave it out.
        self.model.to(self.device, memory_format=memory_format)  # type: ignore[call-overload]
        torch.manual_seed(cfg.seed + 1 + self.ctx.rank)  # per-rank stream for dropout / stochastic depth

        steps_per_epoch = len(self.data.train)
        if steps_per_epoch == 0:
            raise ValueError(f"the training set has fewer images than one batch ({cfg.data.batch_size})")
        self.total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
        self.epochs = math.ceil(self.total_steps / steps_per_epoch)
        # Linear scaling rule (Goyal et al. 2017, arXiv:1706.02677, §2.1): lr grows with the global batch.
        lr = cfg.optim.lr * (cfg.data.batch_size / 256 if cfg.optim.scale_lr else 1)
        self.plan = transfer_plan(cfg, self.model, self.total_steps)
        groups = None
        if self.plan is not None:
            self.plan.freeze_for_good()
            groups = self.plan.param_groups(cfg.optim, lr)
        self.optimizer = build_optimizer(self.model, cfg.optim, lr, groups)
        phases = self.plan.phases if self.plan is not None else []
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.total_steps, steps_per_epoch, phases)
        self.precision = Precision(cfg.precision, self.device)
        self.ema = build_ema(self.model, cfg.ema_decay)
        self.train_model: nn.Module = self.model
        if self.ctx.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # lp-ft's backbone gets no gradient while probing: DDP must not wait for one.
            probing = self.plan is not None and bool(self.plan.probing)
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, find_unused_parameters=probing
            )
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)  # type: ignore[assignment]

        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "best": None, "seconds": 0.0}
        self._epoch_stats = self._window()
        self._resumed_totals: list[float] | None = None
        self._resumed_window: list[float] | None = None
        self._log_stats = self._window()
        self._clock = time.perf_counter()  # since state["seconds"] was last brought up to date
        self._last_save = time.monotonic()
        self._last_line = time.monotonic()
        self._last_eval: Evaluation | None = None
        self._stop = 0  # the signal that asked the run to stop
        if ckpt is not None:
            self._restore(ckpt)
            run_dir = Path(ckpt["run_dir"])
        elif self.ctx.is_main:
            run_dir = new_run_dir(cfg.out, cfg.run_name, cfg.model.name, cfg.data.name)
        else:
            run_dir = Path(cfg.out)
        self.run_dir = Path(self.ctx.broadcast(str(run_dir)))
        self._check_same_start()
        if self.ctx.is_main:
            for stale in remove_stale_temps(self.run_dir):
                log.info("removed %s, a temporary file an interrupted write left", stale.name)
        # On resume, TensorBoard hides what the interrupted session logged after its checkpoint.
        purge = self.state["step"] + 1 if ckpt is not None else None
        self.runlog = RunLog(self.run_dir, enabled=self.ctx.is_main, purge_step=purge)
        if ckpt is None:
            self.runlog.start(cfg.to_dict(), argv)
            if self.data.skipped and self.ctx.is_main:
                listing = "".join(f"{path}\t{reason}\n" for path, reason in self.data.skipped)
                atomic_write_text(self.run_dir / "skipped_images.tsv", "path\treason\n" + listing)
            if self.data.train_subset is not None:
                self.runlog.write_json("train_subset.json", self.data.train_subset)
        else:
            self.runlog.load_rows(self.state["step"])

    def _window(self, totals: list[float] | None = None) -> _Window:
        return _Window(self.device, self.task.train_metrics, totals)

    @property
    def evaluator(self) -> nn.Module:
        """What is evaluated and kept as "the" model: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def _restore(self, ckpt: Checkpoint) -> None:
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
        if ckpt.get("window_totals"):
            self._resumed_window = ckpt["window_totals"][own]

    def _check_same_start(self) -> None:
        """Every rank must resume from the same checkpoint: each reads it from its own disk, so on
        several machines ``--out`` has to be on a filesystem they share."""
        starts = self.ctx.gather(self.state["step"])
        if len(set(starts)) > 1:
            raise RuntimeError(
                f"processes start from different steps {starts}: each read its checkpoint from its own "
                f"disk; on several machines put --out ({self.cfg.out}) on a shared filesystem"
            )

    def checkpoint(self, name: str) -> None:
        # Every rank's RNG state and partial epoch and logging-window statistics, so each resumes
        # its own stream and every log row comes out as an uninterrupted run writes it.
        self._tick()
        rngs = self.ctx.gather(rng_state())
        totals = self.ctx.gather(self._epoch_stats.totals.tolist())
        window = self.ctx.gather(self._log_stats.totals.tolist())
        self._last_save = time.monotonic()
        if not self.ctx.is_main:
            return
        save_checkpoint(
            self.run_dir / f"{name}.pt",
            task=self.task.name,
            model_cfg=self.model.model_cfg,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.precision.scaler.state_dict(),
            ema=self.ema.state_dict() if self.ema is not None else None,
            eval_weights="ema" if self.ema is not None else "model",
            config=self.cfg.to_dict(),
            dataset=self.data.meta,
            rng=rngs,
            epoch_totals=totals,
            window_totals=window,
            run_dir=str(self.run_dir),
            **self.state,
        )

    def evaluate(self, loader: Any) -> Evaluation:
        # Each rank updated its own BN statistics from its own shard; evaluation must see one model.
        self.ctx.broadcast_buffers(self.evaluator)
        return self.task.evaluate(self.evaluator, loader, self.device, self.precision.autocast, self.ctx.all_reduce_sum)

    def run(self) -> FitResult:
        log.info(
            "run folder %s | %s %s on %s (%s), %d process(es) | %d steps of %d images | evaluating on %s",
            self.run_dir,
            self.task.name,
            self.cfg.model.name,
            self.device,
            self.precision.mode,
            self.ctx.world_size,
            self.total_steps,
            self.cfg.data.batch_size,
            self._eval_description(),
        )
        try:
            with self._stop_on_signals():
                for epoch in range(self.state["epoch"], self.epochs):
                    self._epoch(epoch)
                    if self.state["step"] >= self.total_steps:
                        break
        except KeyboardInterrupt:
            self.checkpoint("last")
            self.runlog.close()
            raise TrainingInterrupted(self.run_dir, self.state["step"], self._stop or signal.SIGINT) from None
        # Over every session of the run (a resumed run included), training and evaluation.
        seconds = self.state["seconds"]
        rate = self.state["step"] * self.cfg.data.batch_size / max(seconds, 1e-9)
        test_weights = self._final_weights()
        test = self._measure_test()
        last = self.runlog.rows[-1] if self.runlog.rows else {}
        if self.ctx.is_main:
            from .plots import plot_curves

            plot_curves(self.runlog.rows, self.run_dir / "curves.png", self.runlog.step_rows, self.task.monitor)
            self.runlog.write_json(
                "summary.json",
                {
                    "task": self.task.name,
                    "model": self.cfg.model.name,
                    "data": self.cfg.data.name,
                    "eval_set": self.data.eval_set,
                    "splits": self.data.meta.get("splits"),
                    "best": self.state["best"],
                    "last": last,
                    "test": test,
                    "test_weights": test_weights,
                    "steps": self.state["step"],
                    "seconds": seconds,
                    "images_per_second": rate,
                    "precision": self.precision.mode,
                    "device": str(self.device),
                    "processes": self.ctx.world_size,
                    "torch": torch.__version__,
                },
            )
        self.runlog.close()
        return FitResult(
            self.run_dir,
            self.state["best"] or {},
            last,
            test,
            self.state["step"],
            seconds,
            rate,
            self.evaluator.eval(),
            test_weights,
        )

    def _eval_description(self) -> str:
        if self.data.eval_set == "val":
            return "the validation split every epoch (it chooses best.pt); the test split once, at the end"
        if self.data.eval_set == "test":
            return "the test split every epoch, as a learning curve only (no best.pt)"
        return "the test split once, at the end" if self.data.test is not None else "nothing (no test split)"

    def _final_weights(self) -> str:
        """Load the weights the run folder stands for into the evaluator: best.pt's if the run
        kept one, else the final ones. Returns the checkpoint's name."""
        best = self.run_dir / "best.pt"
        if self.data.eval_set != "val" or not best.is_file():
            return "last.pt"
        self.evaluator.load_state_dict(checkpoint_weights(load_checkpoint(best)), strict=True)
        return "best.pt"

    def _measure_test(self) -> dict[str, Any] | None:
        """The test split, measured once on the weights the run folder stands for (the last
        epoch's measurement when the test split was the learning curve: the same weights)."""
        if self.data.test is None:
            return None
        names = self.data.meta.get("classes")
        if self.data.eval_set == "test" and self._last_eval is not None:
            return self._last_eval.as_dict(names)
        return self.evaluate(self.data.test).as_dict(names)

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """Ctrl-C (SIGINT) and SIGTERM (what Slurm, ``docker stop`` and systemd send) ask to stop
        at the next step boundary, so the checkpoint holds a whole step; a second Ctrl-C stops at
        once. Under torchrun the agent handles signals instead."""
        if self.ctx.enabled or threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: object) -> None:
            self._stop = signum
            signal.signal(signal.SIGINT, signal.default_int_handler)

        # A signal the parent ignores (SIGINT in a shell's background job) stays ignored.
        watched = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not signal.SIG_IGN]
        previous = {sig: signal.signal(sig, request_stop) for sig in watched}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _tick(self) -> None:
        """Bring the run's time up to now: it counts training and evaluation over every session."""
        now = time.perf_counter()
        self.state["seconds"] += now - self._clock
        self._clock = now

    def _checkpoint_due(self) -> bool:
        """``checkpoint_every`` steps, or ``checkpoint_minutes`` since the last save, so a kill at
        any moment loses little work. Ranks must agree: the clock is rank 0's, shared at log rows."""
        cfg, step = self.cfg, self.state["step"]
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            return True
        if not cfg.checkpoint_minutes:
            return False
        late = time.monotonic() - self._last_save >= 60 * cfg.checkpoint_minutes
        if not self.ctx.enabled:
            return late
        return step % cfg.log_every == 0 and bool(self.ctx.broadcast(late))

    def _epoch(self, epoch: int) -> None:
        """Train one epoch, evaluate, log and checkpoint."""
        self.state["epoch"] = epoch
        self.data.train.set_epoch(epoch)
        stats = self._train_epoch(epoch)
        result = self.evaluate(self.data.eval) if self.data.eval is not None else None
        self._last_eval = result
        scalars = result.scalars() if result is not None else {}
        state = self.state
        self._tick()
        state.update(epoch=epoch + 1, batch_in_epoch=0)
        row = {
            "epoch": epoch + 1,
            "step": state["step"],
            "seconds": state["seconds"],
            **stats,
            "lr": self.optimizer.param_groups[0]["lr"],
            **{f"eval_{k}": v for k, v in scalars.items()},
        }
        # best.pt is chosen on a validation split only: a best-on-test pick reports a number chosen on the test set.
        improved = self.data.eval_set == "val" and self.task.is_better(scalars, _unprefixed(state["best"]))
        if improved:
            state["best"] = row
        self.runlog.log_epoch(row)
        self.checkpoint("last")
        if improved:
            self.checkpoint("best")
        log.info(self._epoch_line(epoch, row))
        if self._stop:
            raise KeyboardInterrupt

    def _epoch_line(self, epoch: int, row: dict[str, Any]) -> str:
        text = f"epoch {epoch + 1}/{self.epochs}  loss {row['train_loss']:.4f}"
        for name in self.task.train_metrics[1:]:
            text += f"  train {name} {_fmt(row[f'train_{name}'])}"
        if self.data.eval_set is not None:
            key = f"eval_{self.task.monitor}"
            text += f"  {self.data.eval_set} {self.task.monitor} {_fmt(row[key])}"
            if self.state["best"] is not None:
                text += f" (best {_fmt(self.state['best'][key])})"
        return text + f"  lr {row['lr']:.4g}  {row['images_per_second']:.0f} img/s"

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        from tqdm import tqdm

        cfg, state, loader = self.cfg, self.state, self.data.train
        self._train_mode()
        skip = state["batch_in_epoch"]
        self._epoch_stats = epoch_stats = self._window(self._resumed_totals if skip else None)
        self._resumed_totals = None
        self._log_stats = window = self._window(self._resumed_window)
        self._resumed_window = None
        bar = tqdm(
            total=min(len(loader), self.total_steps - state["step"] + skip),
            initial=skip,
            leave=False,
            unit="step",
            desc=f"epoch {epoch + 1}/{self.epochs}",
            disable=None if (cfg.progress and self.ctx.is_main) else True,
        )
        window_steps = int(window.totals[-1] > 0)  # a window restored mid-way has steps in it
        for i, batch in enumerate(loader):
            if i < skip:  # resuming mid-epoch: the loader replays the same order and augmentations
                continue
            if state["step"] >= self.total_steps:
                break
            if self.plan is not None and self.plan.probe_steps and state["step"] == self.plan.probe_steps:
                self._train_mode()  # linear probing is over: the backbone trains from here on
            x, y = self.task.make_batch(batch, self.device)
            loss, outputs = self._step(x, y)
            state["step"] += 1
            state["batch_in_epoch"] = i + 1
            step_stats, n = self.task.step_stats(loss, outputs, y), self.task.batch_size(y)
            epoch_stats.add(step_stats, n)
            window.add(step_stats, n)
            window_steps += 1
            if state["step"] % cfg.log_every == 0 or i + 1 == len(loader):
                self._log_window(window, epoch + (i + 1) / len(loader), bar)
                self._log_stats = window = self._window()
                window_steps = 0
            bar.update(1)
            for cb in self.callbacks:
                cb(state["step"], {"loss": loss.detach(), "epoch": epoch, "model": self.model})
            if self._stop:
                raise KeyboardInterrupt
            if bar.disable and self.ctx.is_main:
                self._progress_line(loss)
            if i + 1 < len(loader) and state["step"] < self.total_steps and self._checkpoint_due():
                self.checkpoint("last")  # mid-epoch; the epoch's end saves anyway
        if window_steps:  # max_steps ended the run mid-epoch
            self._log_window(window, epoch + state["batch_in_epoch"] / len(loader), bar)
        bar.close()
        stats = epoch_stats.read(self.ctx)
        _check_finite(stats["train_loss"], state["step"], self.optimizer)
        return stats

    def _train_mode(self) -> None:
        self.model.train()
        if self.plan is not None:
            self.plan.apply(self.state["step"])

    def _progress_line(self, loss: torch.Tensor) -> None:
        """Without a terminal (a log file, a batch job) there is no bar: a line every 30 s instead."""
        if not self.cfg.progress or time.monotonic() - self._last_line < PROGRESS_SECONDS:
            return
        self._last_line = time.monotonic()
        self._tick()
        step, total, batch = self.state["step"], self.total_steps, self.cfg.data.batch_size
        rate = step * batch / max(self.state["seconds"], 1e-9)
        eta = (total - step) * batch / max(rate, 1e-9)
        log.info("step %d/%d  loss %.4f  %.0f img/s  ETA %s", step, total, loss.item(), rate, _duration(eta))

    def _log_window(self, window: _Window, epoch: float, bar: Any) -> None:
        stats = window.read(self.ctx)
        # Summed over every process, so all ranks stop together and none waits in a collective.
        _check_finite(stats["train_loss"], self.state["step"], self.optimizer)
        self.runlog.log_step(
            {"step": self.state["step"], "epoch": epoch, **stats, "lr": self.optimizer.param_groups[0]["lr"]}
        )
        bar.set_postfix(
            {k.removeprefix("train_"): _fmt(v) for k, v in stats.items() if k != "images_per_second"}
            | {"img_s": f"{stats['images_per_second']:.0f}"}
        )

    def _step(self, x: torch.Tensor, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step, on the one precision path (the scaler is a no-op unless fp16)."""
        scaler = self.precision.scaler
        with self.precision.autocast():
            outputs = self.task.forward(self.train_model, x, y)
            loss = self.task.loss(outputs, y)
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
        return loss, outputs


PROGRESS_SECONDS = 30.0


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def _unprefixed(row: dict[str, Any] | None) -> dict[str, float] | None:
    """An epoch row's evaluation scalars without their ``eval_`` prefix."""
    if row is None:
        return None
    return {k.removeprefix("eval_"): v for k, v in row.items() if k.startswith("eval_")}


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _check_finite(loss: float, step: int, optimizer: torch.optim.Optimizer) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"loss is {loss} at step {step} (lr {optimizer.param_groups[0]['lr']:.4g}); stopped, and the last "
            "good checkpoint is kept. Lower --lr, add warmup (--set schedule.warmup_epochs=1) or clip gradients "
            "(--set optim.clip_grad=1.0)."
        )


__all__ = [
    "FitResult",
    "StepCallback",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "build_model",
    "build_task",
    "fit",
]
