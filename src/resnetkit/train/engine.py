"""``fit``: train a model from a ``TrainConfig``, evaluate it every epoch, keep checkpoints."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts import (
    Checkpoint,
    RunLog,
    atomic_write_text,
    ensure_writable,
    load_checkpoint,
    load_pretrained_into,
    new_run_dir,
    remove_stale_temps,
    save_checkpoint,
)
from ..models import fit_whitening, set_grad_checkpointing
from ..runtime.memory import hold_freed_memory
from ..tasks import Evaluation, Task, get_task
from .bf16_guard import Bf16ConvGuard
from .config import TrainConfig
from .distributed import elastic_run_name, init_distributed, restart_count
from .ema import build_ema
from .hooks import (
    PROGRESS_SECONDS,
    Checkpointer,
    EMAUpdate,
    EvalHook,
    HookBase,
    Lookahead,
    MetricsWriter,
    NaNGuard,
    Progress,
    StepCallback,
    StepCallbacks,
    TrainingDiverged,
)
from .loaders import build_loaders
from .memory_guard import MemoryGuard
from .optim import build_optimizer, build_scheduler, end_epoch
from .precision import Precision
from .state import StatSums, TrainState
from .syncbn import convert_sync_batchnorm
from .transfer import TransferPlan

log = logging.getLogger("resnetkit.train")


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
    task: str = "classification"  # what was trained: its headline metric is the task's ``monitor``
    units: str = "images"  # what its items are called (the task's ``units``): "images", "series", "texts"


def build_task(cfg: TrainConfig) -> Task:
    """The config's task with the options it takes (label smoothing, flip TTA, ...)."""
    return get_task(cfg.task_name).from_options(
        label_smoothing=cfg.optim.label_smoothing,
        tta_flip=cfg.tta_flip,
        tta_shift=cfg.tta_shift,
        scenes=cfg.data.scenes,
        seed=cfg.seed,
        max_length=cfg.data.max_length,
        normalize=cfg.data.normalize,
    )


def build_model(cfg: TrainConfig, meta: dict, task: Task) -> nn.Module:
    model = task.build_model(cfg.model.name, meta, cfg.model.overrides)
    if cfg.model.weights:
        # Fine-tuning to new classes wants a fresh head even where the source's has their number.
        new_head = cfg.transfer.mode != "none" and cfg.transfer.new_head
        load_pretrained_into(model, cfg.model.weights, new_head=new_head)
    return model


def transfer_plan(cfg: TrainConfig, model: nn.Module, total_steps: int, task: Task) -> TransferPlan | None:
    """The run's transfer plan, or None when it trains every part at one lr as usual."""
    t = cfg.transfer
    if t.mode == "none" and t.freeze == "none" and t.head_lr is t.backbone_lr is t.layer_decay is None:
        return None
    return TransferPlan(model, t, total_steps, task.transfer_parts(model))


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
    hooks: Sequence[HookBase] = (),
) -> FitResult:
    """Train as ``cfg`` says. ``resume`` (a run folder or checkpoint) continues that run exactly
    where its last checkpoint stopped, mid-epoch included; the run folder is the same.

    ``hooks`` (``resnetkit.train.hooks.HookBase``) are called after the built-in ones at every
    point of the loop; ``callbacks`` are plain functions called after every optimizer step with
    the step number and {"loss", "epoch", "model"}."""
    ckpt = _resume_checkpoint(Path(resume)) if resume else None
    if ckpt is not None:
        cfg = TrainConfig.from_dict(ckpt["config"])
    if cfg is None:
        raise ValueError("fit needs a config or a run to resume")
    if ckpt is None:
        cfg, ckpt = _elastic_restart(cfg)
    trainer = Trainer(cfg, ckpt, callbacks, argv, hooks)
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


class Trainer:
    """One run: the task, model, data, optimizer, schedule, precision and EMA that a config
    describes (restored from ``ckpt`` when resuming), the run folder, and the loop::

        before_train
        for each epoch:
            before_epoch
            for each batch: before_step, _step (one optimizer step), after_step
            after_epoch
        after_train

    Each call point goes to every hook (``hooks.py`` says what each sees) in this order: Bf16ConvGuard,
    MemoryGuard (unless ``memory_guard`` is off), EMAUpdate, NaNGuard, EvalHook, MetricsWriter, Checkpointer,
    Progress, then the step callbacks and the ``hooks`` given. Ctrl-C or SIGTERM stops the run at the
    next step boundary, after a checkpoint."""

    def __init__(
        self,
        cfg: TrainConfig,
        ckpt: Checkpoint | None = None,
        callbacks: Sequence[StepCallback] = (),
        argv: list[str] | None = None,
        hooks: Sequence[HookBase] = (),
    ):
        self.cfg = cfg
        self.task = build_task(cfg)
        self.ctx, self.device = init_distributed(cfg.device)
        try:
            self._set_up(ckpt, callbacks, argv, hooks)
        except BaseException:
            # A rank that fails to set up (bad data, a resume the ranks disagree on, a refusal)
            # leaves the process group at once: a gloo group still alive when the interpreter
            # exits can abort the process (SIGABRT in teardown) instead of exiting with its error.
            self.ctx.close(finished=False)
            raise

    def _set_up(
        self,
        ckpt: Checkpoint | None,
        callbacks: Sequence[StepCallback],
        argv: list[str] | None,
        hooks: Sequence[HookBase],
    ) -> None:
        cfg = self.cfg
        if self.device.type == "cpu":
            hold_freed_memory()  # activations reuse freed heap memory, not fresh page-faulted mmaps
        if self.ctx.is_main:  # before any data is read or model built
            ensure_writable(Path(ckpt["run_dir"]) if ckpt is not None else Path(cfg.out))
        seed_everything(cfg.seed, cfg.deterministic)
        self.data = build_loaders(cfg, self.ctx, self.device, self.task)
        per_rank = cfg.data.batch_size // self.ctx.world_size
        if per_rank % cfg.grad_accum_steps:
            raise ValueError(
                f"--batch-size {cfg.data.batch_size} is {per_rank} a process: it must divide into "
                f"--grad-accum-steps {cfg.grad_accum_steps} micro-batches"
            )
        self.model = self._build_model()
        if ckpt is None:  # a stem whitening its input is fitted to the first training images (airbench)
            fit_whitening(self.model, (self.task.make_batch(b, self.device)[0] for b in self.data.train))
        torch.manual_seed(cfg.seed + 1 + self.ctx.rank)  # per-rank stream for dropout / stochastic depth
        self.steps_per_epoch = len(self.data.train)  # optimizer steps
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set has fewer images than one batch ({cfg.data.batch_size})")
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self._build_optimization()
        self.ddp, self.train_model = self._wrap_model()

        names = self.task.train_metrics
        if ckpt is None:
            self.state = TrainState(StatSums(self.device, names), StatSums(self.device, names))
        else:
            self._restore(ckpt)
        self._clock = time.perf_counter()  # since state.seconds was last brought up to date
        self._stop = 0  # the signal that asked the run to stop
        self._open_run(ckpt, argv)

        # What the loop and the hooks tell each other (hooks.py says when each is set).
        self.loss = torch.zeros(())
        self.step_metrics: dict[str, float] | None = None
        self.epoch_metrics: dict[str, float] = {}
        self.evaluation: Evaluation | None = None
        self.improved = False
        self.epoch_row: dict[str, Any] = {}
        self.test: dict[str, Any] | None = None
        self.test_weights = "last.pt"  # the checkpoint whose weights ``test`` measured

        self.hooks: list[HookBase] = []
        self.register_hooks(
            [Bf16ConvGuard()]
            + [MemoryGuard()] * cfg.memory_guard
            + [Lookahead()] * bool(cfg.optim.lookahead_steps)
            + [EMAUpdate(), NaNGuard(), EvalHook(), MetricsWriter(), Checkpointer(), Progress(PROGRESS_SECONDS)]
        )
        self.register_hooks([StepCallbacks(callbacks), *hooks] if callbacks else hooks)

    def register_hooks(self, hooks: Sequence[HookBase]) -> None:
        """Add hooks after those the trainer has; they are called in this order."""
        for hook in hooks:
            hook.trainer = self
        self.hooks.extend(hooks)

    def _build_model(self) -> nn.Module:
        model = build_model(self.cfg, self.data.meta, self.task)
        if self.cfg.grad_checkpointing:  # every stage of the classifier or dense model's backbone
            set_grad_checkpointing(model, True)  # the variant is chosen in _wrap_model
        if self.cfg.sync_bn and self.ctx.enabled:
            model = convert_sync_batchnorm(model, self.device)
        memory_format = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        # nn.Module.to takes memory_format (documented); PyTorch's stubs leave it out.
        model.to(self.device, memory_format=memory_format)  # type: ignore[call-overload]
        return model

    def _build_optimization(self) -> None:
        """The transfer plan, optimizer, schedule, precision and EMA."""
        cfg = self.cfg
        # Linear scaling rule (Goyal et al. 2017, arXiv:1706.02677, §2.1): lr grows with the global batch.
        lr = cfg.optim.lr * (cfg.data.batch_size / 256 if cfg.optim.scale_lr else 1)
        self.plan = transfer_plan(cfg, self.model, self.total_steps, self.task)
        groups = None
        if self.plan is not None:
            self.plan.freeze_for_good()
            groups = self.plan.param_groups(cfg.optim, lr)
        self.optimizer = build_optimizer(self.model, cfg.optim, lr, groups)
        phases = self.plan.phases if self.plan is not None else []
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.total_steps, self.steps_per_epoch, phases)
        self.precision = Precision(cfg.precision, self.device)
        self.ema = build_ema(self.model, cfg.ema_decay)

    def _wrap_model(self) -> tuple[nn.parallel.DistributedDataParallel | None, nn.Module]:
        """DDP under torchrun, then ``torch.compile``: (the DDP module or None, what trains)."""
        ddp = None
        train_model: nn.Module = self.model
        # lp-ft's backbone gets no gradient while probing: DDP must not wait for one.
        find_unused = self.ctx.enabled and self.plan is not None and bool(self.plan.probing)
        if self.cfg.grad_checkpointing and not (find_unused or self.cfg.compile):
            # The reentrant variant takes fewer calls a step (models/stage.py); DDP's search for
            # unused parameters and torch.compile cannot see through it, so they keep the general one.
            set_grad_checkpointing(self.model, True, reentrant=True)
        if self.ctx.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, find_unused_parameters=find_unused
            )
            train_model = ddp
        if self.cfg.compile:
            train_model = torch.compile(train_model)  # type: ignore[assignment]
        return ddp, train_model

    def _restore(self, ckpt: Checkpoint) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.precision.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.state = TrainState.from_checkpoint(ckpt, self.ctx.rank, self.device, self.task.train_metrics)

    def _open_run(self, ckpt: Checkpoint | None, argv: list[str] | None) -> None:
        """The run folder (a new one, or the checkpoint's) and its logs: started, or reloaded up to
        the checkpoint's step."""
        cfg = self.cfg
        if ckpt is not None:
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
        purge = self.state.step + 1 if ckpt is not None else None
        self.runlog = RunLog(self.run_dir, enabled=self.ctx.is_main, purge_step=purge)
        if ckpt is not None:
            self.runlog.load_rows(self.state.step)
            return
        self.runlog.start(cfg.to_dict(), argv)
        if self.data.skipped and self.ctx.is_main:
            listing = "".join(f"{path}\t{reason}\n" for path, reason in self.data.skipped)
            atomic_write_text(self.run_dir / "skipped_images.tsv", "path\treason\n" + listing)
        if self.data.train_subset is not None:
            self.runlog.write_json("train_subset.json", self.data.train_subset)

    def _check_same_start(self) -> None:
        """Every rank must resume from the same checkpoint: each reads it from its own disk, so on
        several machines ``--out`` has to be on a filesystem they share."""
        starts = self.ctx.gather(self.state.step)
        if len(set(starts)) > 1:
            raise RuntimeError(
                f"processes start from different steps {starts}: each read its checkpoint from its own "
                f"disk; on several machines put --out ({self.cfg.out}) on a shared filesystem"
            )

    @property
    def evaluator(self) -> nn.Module:
        """What is evaluated and kept as "the" model: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def images_per_second(self) -> float:
        """Over every session of the run (a resumed run included), training and evaluation."""
        return self.state.step * self.data.batch_size / max(self.state.seconds, 1e-9)

    def tick(self) -> None:
        """Bring the run's time up to now: it counts training and evaluation over every session."""
        now = time.perf_counter()
        self.state.seconds += now - self._clock
        self._clock = now

    def checkpoint(self, name: str) -> None:
        """``<name>.pt`` in the run folder: written by rank 0, with every rank's resume state."""
        self.tick()
        resume = self.state.to_checkpoint(self.ctx)
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
            run_dir=str(self.run_dir),
            **resume,
        )

    def evaluate(self, loader: Any) -> Evaluation:
        # Each rank updated its own BN statistics from its own shard; evaluation must see one model.
        self.ctx.broadcast_buffers(self.evaluator)
        return self.task.evaluate(self.evaluator, loader, self.device, self.precision.autocast, self.ctx.all_reduce_sum)

    def run(self) -> FitResult:
        try:
            with self._stop_on_signals():
                self._call("before_train")
                for epoch in range(self.state.epoch, self.epochs):
                    self._train_epoch(epoch)
                    if self.state.step >= self.total_steps:
                        break
        except KeyboardInterrupt:
            self.checkpoint("last")
            self.runlog.close()
            raise TrainingInterrupted(self.run_dir, self.state.step, self._stop or signal.SIGINT) from None
        self._call("after_train")
        self.runlog.close()
        if self.cfg.grad_checkpointing:  # the model handed back serves any use of autograd
            set_grad_checkpointing(self.model, True)
        return FitResult(
            self.run_dir,
            self.state.best or {},
            self.runlog.rows[-1] if self.runlog.rows else {},
            self.test,
            self.state.step,
            self.state.seconds,
            self.images_per_second,
            self.evaluator.eval(),
            self.test_weights,
            self.task.name,
            self.task.units(self.data.meta),
        )

    def _call(self, point: str) -> None:
        for hook in self.hooks:
            getattr(hook, point)()

    def _train_epoch(self, epoch: int) -> None:
        """One epoch (what is left of it, when resuming mid-epoch) between its hooks."""
        state = self.state
        self.data.train.set_epoch(epoch)
        self._train_mode()
        skip = state.batch_in_epoch
        if skip:
            state.epoch_sums.restart()  # going on from the checkpoint's sums
        else:
            state.epoch_sums.reset()
        state.window_sums.restart()
        self._call("before_epoch")
        for i, batch in enumerate(self.data.train):
            if i < skip:  # resuming mid-epoch: the loader replays the same order and augmentations
                continue
            if state.step >= self.total_steps:
                break
            if self.plan is not None and self.plan.probe_steps and state.step == self.plan.probe_steps:
                self._train_mode()  # linear probing is over: the backbone trains from here on
            x, y = self.batch = self.task.make_batch(batch, self.device)
            self._call("before_step")
            self.loss, stats = self._step(x, y)
            state.step, state.batch_in_epoch = state.step + 1, i + 1
            self._record(stats, self.task.batch_size(y))
            self._call("after_step")
            if self._stop:
                raise KeyboardInterrupt
        self.epoch_metrics = state.epoch_sums.read(self.ctx)
        end_epoch(self.scheduler, self.epoch_metrics)  # a plateau schedule reads the epoch's loss
        self._call("after_epoch")
        if self._stop:
            raise KeyboardInterrupt

    def _step(self, x: torch.Tensor, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the one precision path (the scaler is a no-op unless fp16).

        With ``grad_accum_steps`` N the batch goes forward and backward in N slices, each loss
        weighted by its share of the batch (1/N, as timm and nanoGPT divide it): the gradients add up
        to the whole batch's, in one slice's activation memory. DDP all-reduces them once, in the
        last slice's backward. Returns the batch's loss and the task's step statistics."""
        scaler, n = self.precision.scaler, self.task.batch_size(y)
        parts = min(self.cfg.grad_accum_steps, n)  # a few labels can make a batch smaller than asked
        losses, stats = [], []
        for a, b in itertools.pairwise([n * k // parts for k in range(parts + 1)]):
            share = (b - a) / n
            with self.ddp.no_sync() if self.ddp is not None and b < n else contextlib.nullcontext():
                with self.precision.autocast():
                    outputs = self.task.forward(self.train_model, x[a:b], y[a:b])
                    loss = self.task.loss(outputs, y[a:b])
                scaler.scale(loss * share).backward()
            losses.append(loss.detach() * share)
            stats.append(self.task.step_stats(loss, outputs, y[a:b]))
        if self.cfg.optim.clip_grad:
            scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        scaler.step(self.optimizer)
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return torch.stack(losses).sum(), torch.stack(stats).sum(0)

    def _record(self, stats: torch.Tensor, n: int) -> None:
        """Add a step's statistics to the epoch's and the logging window's sums; read the window (a
        collective) when the step ends it: every ``log_every`` steps, at an epoch's end, at the run's."""
        state = self.state
        state.epoch_sums.add(stats, n)
        state.window_sums.add(stats, n)
        self.step_metrics = None
        ends = state.batch_in_epoch == self.steps_per_epoch or state.step == self.total_steps
        if state.step % self.cfg.log_every == 0 or ends:
            self.step_metrics = state.window_sums.read(self.ctx)
            state.window_sums.reset()

    def _train_mode(self) -> None:
        self.model.train()
        if self.plan is not None:
            self.plan.apply(self.state.step)

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


__all__ = [
    "FitResult",
    "HookBase",
    "StepCallback",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "build_model",
    "build_task",
    "fit",
]
