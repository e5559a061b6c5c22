"""Optimizers and per-step learning-rate schedules."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .config import OptimConfig, ScheduleConfig


def param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """Exempting norm scales/shifts and biases from weight decay helps short schedules (Bag of
    Tricks, He et al. 2019, §3.1 "no bias decay"); the paper decays everything."""
    if decay_norm_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, lr: float | None = None, groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """``groups`` (each may carry its own ``lr``) replace the default decay/no-decay groups."""
    groups = groups if groups is not None else param_groups(model, cfg.weight_decay, cfg.decay_norm_and_bias)
    lr = cfg.lr if lr is None else lr
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if cfg.name == "adam":
        # Adam's L2 penalty (coupled, as Keras's Adam and dl-4-tsc have it); the groups' weight decay.
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"optim.name={cfg.name!r}: expected sgd, adam or adamw")


def lr_factor(step: int, total: int, cfg: ScheduleConfig, warmup: int) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based) of ``total``."""
    if step < warmup:
        return 0.1 if cfg.warmup == "constant" else (step + 1) / warmup
    if cfg.name in ("constant", "plateau"):  # plateau: PlateauLR moves the lr itself, at epoch ends
        return 1.0
    if cfg.name == "step":
        return cfg.gamma ** sum(step >= m * total for m in cfg.milestones)
    progress = (step - warmup) / max(total - warmup, 1)
    if cfg.name == "cosine":
        return cfg.min_lr + (1 - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.name == "onecycle":
        # Smith & Topin 2018: linear up over the first 30% (after any warmup), linear down to min_lr.
        peak = 0.3
        if progress < peak:
            return 0.1 + 0.9 * progress / peak
        return 1 - (1 - cfg.min_lr) * (progress - peak) / (1 - peak)
    raise ValueError(f"schedule.name={cfg.name!r}: expected step, cosine, onecycle, constant or plateau")


class PlateauLR(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """``schedule.name=plateau``: the lr times ``gamma`` when the epoch's training loss has not
    improved for ``patience`` epochs, down to ``min_lr`` (a fraction of each group's lr): Keras's
    ReduceLROnPlateau(monitor="loss"), which dl-4-tsc trains its ResNet with (factor 0.5, patience
    50, min_lr 1e-4 for lr 1e-3). The engine steps its scheduler after every optimizer step; this
    one moves only at an epoch's end (``end_epoch``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig):
        if cfg.warmup_steps or cfg.warmup_epochs:
            raise ValueError("schedule.name=plateau takes no warmup")
        floors = [g["lr"] * cfg.min_lr for g in optimizer.param_groups]
        super().__init__(optimizer, mode="min", factor=cfg.gamma, patience=cfg.patience, min_lr=floors)

    def step(self, metrics: float | None = None, epoch: int | None = None) -> None:  # type: ignore[override]
        if metrics is not None:
            super().step(metrics)


def end_epoch(scheduler: Any, metrics: dict[str, float]) -> None:
    """What a schedule does at an epoch's end, with the epoch's training metrics (all ranks alike)."""
    if isinstance(scheduler, PlateauLR):
        scheduler.step(metrics["train_loss"])


def build_scheduler(optimizer, cfg: ScheduleConfig, total_steps: int, steps_per_epoch: int, phases: Sequence[int] = ()):
    """Per-step LambdaLR over each group's own lr (``PlateauLR`` for ``plateau``). ``phases``:
    steps at which the schedule starts again (warmup included) over the steps left to the next
    phase, as lp-ft's fine-tuning does."""
    if cfg.name == "plateau":
        if not 0 < cfg.gamma < 1:
            raise ValueError(f"schedule.gamma={cfg.gamma}: plateau multiplies the lr by it, so 0 < gamma < 1")
        return PlateauLR(optimizer, cfg)
    warmup = cfg.warmup_steps or round(cfg.warmup_epochs * steps_per_epoch)
    lr_factor(0, total_steps, cfg, warmup)  # fail now, not mid-run, on a bad name
    bounds = [0, *sorted(phases), total_steps]

    def factor(step: int) -> float:
        start, end = next((a, b) for a, b in itertools.pairwise(bounds) if step < b or b == total_steps)
        return lr_factor(step - start, end - start, cfg, warmup)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
