"""``fit``: train a model from a ``TrainConfig``, evaluate it every epoch, keep checkpoints."""
from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data import AugmentConfig, InMemoryDataset, InMemoryLoader, load_dataset, make_streaming_loader
from ..models import create_model
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .distributed import DistContext, init_distributed
from .evaluate import EvalResult, evaluate
from .optim import build_optimizer, build_scheduler
from .plots import plot_curves
from .precision import Precision
from .run import RunLog, new_run_dir

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


StepCallback = Callable[[int, dict], None]


@dataclass
class _Data:
    train: InMemoryLoader
    eval: InMemoryLoader
    test: InMemoryLoader | None
    meta: dict


def build_loaders(cfg: TrainConfig, ctx: DistContext, device: torch.device) -> _Data:
    d = cfg.data
    if d.batch_size % ctx.world_size:
        raise ValueError(f"--batch-size {d.batch_size} is the global batch: it must divide by the {ctx.world_size} processes")
    per_rank = d.batch_size // ctx.world_size
    train = load_dataset(d.name, "train", d.data_dir, d.download, image_size=d.image_size)
    test = load_dataset(d.name, "test", d.data_dir, d.download, image_size=d.image_size)
    held_out = None
    if d.val_size:
        if not isinstance(train, InMemoryDataset):
            raise ValueError("data.val_size needs an in-memory dataset; give an image folder a val/ subfolder instead")
        train, held_out = train.split(d.val_size, seed=cfg.seed)
    evalset = held_out if held_out is not None else test
    meta = {"name": d.name, "classes": list(train.classes), "mean": list(train.mean), "std": list(train.std),
            "in_chans": train.in_chans, "image_size": list(_image_size(train, d.image_size))}

    def loader(ds, train_mode):
        batch = per_rank if train_mode else max(d.eval_batch_size // ctx.world_size, 1)
        if isinstance(ds, InMemoryDataset):
            aug = AugmentConfig(pad=d.pad, pad_mode=d.pad_mode, flip=d.flip, erasing=d.erasing) if train_mode else None
            return InMemoryLoader(ds, batch, shuffle=train_mode, drop_last=train_mode, augment=aug, seed=cfg.seed,
                                  rank=ctx.rank, world_size=ctx.world_size, device=device,
                                  channels_last=cfg.channels_last)
        return make_streaming_loader(ds, batch, shuffle=train_mode, num_workers=d.workers, seed=cfg.seed,
                                     rank=ctx.rank, world_size=ctx.world_size, drop_last=train_mode)

    return _Data(loader(train, True), loader(evalset, False), loader(test, False) if held_out is not None else None, meta)


def _image_size(ds, default: int) -> tuple[int, int]:
    return tuple(ds.image_size) if isinstance(ds, InMemoryDataset) else (default, default)


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
    ctx, device = init_distributed(cfg.device)
    seed_everything(cfg.seed, cfg.deterministic)
    data = build_loaders(cfg, ctx, device)
    model = build_model(cfg, data.meta)
    if cfg.sync_bn and ctx.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
    model.to(device, memory_format=memory_format)
    torch.manual_seed(cfg.seed + 1 + ctx.rank)  # per-rank stream for dropout / stochastic depth

    steps_per_epoch = len(data.train)
    if steps_per_epoch == 0:
        raise ValueError(f"the training set has fewer images than one batch ({cfg.data.batch_size})")
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    lr = cfg.optim.lr * (cfg.data.batch_size / 256 if cfg.optim.scale_lr else 1)
    optimizer = build_optimizer(model, cfg.optim, lr)
    scheduler = build_scheduler(optimizer, cfg.schedule, total_steps, steps_per_epoch)
    precision = Precision(cfg.precision, device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True) if cfg.ema_decay else None
    train_model = model
    if ctx.enabled:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)

    state = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "best": None, "seconds": 0.0}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        precision.scaler.load_state_dict(ckpt["scaler"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        state.update({k: ckpt[k] for k in state if k in ckpt})
        set_rng_state(ckpt["rng"][min(ctx.rank, len(ckpt["rng"]) - 1)])
        run_dir = Path(ckpt["run_dir"])
    else:
        run_dir = new_run_dir(cfg.out, cfg.run_name, cfg.model.name, cfg.data.name) if ctx.is_main else Path(cfg.out)
    run_dir = _broadcast_path(run_dir, ctx)
    runlog = RunLog(run_dir, enabled=ctx.is_main)
    if ckpt is None:
        runlog.write_config(cfg.to_dict(), argv)
    else:
        runlog.load_rows()
    log.info("run folder %s | %s on %s (%s), %d process(es) | %d steps of %d images", run_dir, cfg.model.name, device,
             precision.mode, ctx.world_size, total_steps, cfg.data.batch_size)

    def checkpoint(name: str) -> None:
        rngs = _gather_rng(ctx)
        if not ctx.is_main:
            return
        save_checkpoint(
            run_dir / f"{name}.pt", model_cfg=model.model_cfg, model=model.state_dict(),
            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), scaler=precision.scaler.state_dict(),
            ema=ema.state_dict() if ema is not None else None, eval_weights="ema" if ema is not None else "model",
            config=cfg.to_dict(), dataset=data.meta, rng=rngs, run_dir=str(run_dir), **state,
        )

    evaluator = ema.module if ema is not None else model
    start, seen = time.perf_counter(), 0
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    try:
        for epoch in range(state["epoch"], epochs):
            state["epoch"] = epoch
            epoch_start = time.perf_counter()
            data.train.set_epoch(epoch)
            stats, seen_epoch = _train_epoch(
                train_model, model, data.train, optimizer, scheduler, precision, ema, criterion, cfg, ctx, state,
                total_steps, epoch, epochs, callbacks, device,
            )
            seen += seen_epoch
            result = evaluate(evaluator, data.eval, len(data.meta["classes"]), precision.autocast, cfg.tta_flip,
                              device, ctx.all_reduce_sum)
            state.update(epoch=epoch + 1, batch_in_epoch=0, seconds=state["seconds"] + time.perf_counter() - epoch_start)
            row = {"epoch": epoch + 1, "step": state["step"], "seconds": state["seconds"], **stats,
                   "lr": optimizer.param_groups[0]["lr"],
                   "eval_loss": result.loss, "eval_top1": result.top1, "eval_top5": result.top5}
            improved = state["best"] is None or result.top1 > state["best"]["eval_top1"]
            if improved:
                state["best"] = row
            runlog.log_epoch(row)
            checkpoint("last")
            if improved:
                checkpoint("best")
            log.info("epoch %d/%d  loss %.4f  train %.2f%%  eval %.2f%% (best %.2f%%)  lr %.4g  %.0f img/s",
                     epoch + 1, epochs, stats["train_loss"], 100 * stats["train_top1"], 100 * result.top1,
                     100 * state["best"]["eval_top1"], row["lr"], stats["images_per_second"])
            if state["step"] >= total_steps:
                break
    except KeyboardInterrupt:
        checkpoint("last")
        runlog.close()
        raise TrainingInterrupted(run_dir, state["step"]) from None
    seconds = time.perf_counter() - start
    test = None
    if data.test is not None:
        test = evaluate(evaluator, data.test, len(data.meta["classes"]), precision.autocast, cfg.tta_flip, device,
                        ctx.all_reduce_sum).as_dict(data.meta["classes"])
    last = runlog.rows[-1] if runlog.rows else {}
    if ctx.is_main:
        plot_curves(runlog.rows, run_dir / "curves.png")
        runlog.write_json("summary.json", {
            "model": cfg.model.name, "data": cfg.data.name, "best": state["best"], "last": last, "test": test,
            "steps": state["step"], "seconds": seconds, "images_per_second": seen * ctx.world_size / max(seconds, 1e-9),
            "precision": precision.mode, "device": str(device), "processes": ctx.world_size,
            "torch": torch.__version__,
        })
    runlog.close()
    return FitResult(run_dir, state["best"] or {}, last, test, state["step"], seconds,
                     seen * ctx.world_size / max(seconds, 1e-9))


def _train_epoch(train_model, model, loader, optimizer, scheduler, precision, ema, criterion, cfg, ctx, state,
                 total_steps, epoch, epochs, callbacks, device) -> tuple[dict, int]:
    from tqdm import tqdm

    model.train()
    skip = state["batch_in_epoch"]
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, seen
    bar = tqdm(total=min(len(loader), total_steps - state["step"] + skip), initial=skip, leave=False, unit="step",
               desc=f"epoch {epoch + 1}/{epochs}", disable=None if (cfg.progress and ctx.is_main) else True)
    tick, tick_seen = time.perf_counter(), 0
    for i, (x, y) in enumerate(loader):
        if i < skip:  # resuming mid-epoch: the loader replays the same order and augmentations
            continue
        if state["step"] >= total_steps:
            break
        with precision.autocast():
            logits = train_model(x)
            loss = criterion(logits.float(), y)
        precision.scaler.scale(loss).backward()
        if cfg.optim.clip_grad:
            precision.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad)
        precision.scaler.step(optimizer)
        precision.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        state["step"] += 1
        state["batch_in_epoch"] = i + 1
        totals += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double(),
                               torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
        tick_seen += len(y)
        if state["step"] % 25 == 0 or i + 1 == len(loader):
            _check_finite(loss, state["step"], optimizer)
            rate = tick_seen * ctx.world_size / max(time.perf_counter() - tick, 1e-9)
            bar.set_postfix(loss=f"{float(totals[0] / totals[2]):.3f}", acc=f"{float(totals[1] / totals[2]):.1%}",
                            img_s=f"{rate:.0f}")
        bar.update(1)
        for cb in callbacks:
            cb(state["step"], {"loss": loss.detach(), "epoch": epoch, "model": model})
    bar.close()
    _check_finite(totals[0], state["step"], optimizer)
    totals = ctx.all_reduce_sum(totals)
    n = max(float(totals[2]), 1.0)
    elapsed = max(time.perf_counter() - tick, 1e-9)
    return ({"train_loss": float(totals[0]) / n, "train_top1": float(totals[1]) / n,
             "images_per_second": tick_seen * ctx.world_size / elapsed}, tick_seen)


def _check_finite(loss: torch.Tensor, step: int, optimizer) -> None:
    if not torch.isfinite(loss).all():
        raise TrainingDiverged(
            f"loss is {float(loss.detach())} at step {step} (lr {optimizer.param_groups[0]['lr']:.4g}); stopped, and the last "
            "good checkpoint is kept. Lower --lr, add warmup (--set schedule.warmup_epochs=1) or clip gradients "
            "(--set optim.clip_grad=1.0)."
        )


def _gather_rng(ctx: DistContext) -> list[dict]:
    """Every rank's RNG state, so each resumes its own stream."""
    if not ctx.enabled:
        return [rng_state()]
    import torch.distributed as dist

    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, rng_state())
    return out


def _broadcast_path(path: Path, ctx: DistContext) -> Path:
    if not ctx.enabled:
        return path
    import torch.distributed as dist

    box = [str(path)]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


__all__ = ["EvalResult", "FitResult", "TrainingDiverged", "TrainingInterrupted", "build_loaders", "build_model",
           "evaluate", "fit"]
