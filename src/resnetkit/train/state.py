"""Where a run stands: the counters, the best epoch and the running sums of step statistics that a
checkpoint keeps besides the weights, so that a resumed run continues as an uninterrupted one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .distributed import DistContext
from .rng import rng_state, set_rng_state


class StatSums:
    """Sums of a task's step statistics and the sample count, kept on the device so that adding
    a step never waits for it. ``restored`` is what the sums held when their clock started (a
    resumed run's), left out of images/s."""

    def __init__(self, device: torch.device, names: Sequence[str], totals: list[float] | None = None):
        self.names = tuple(names)
        self.totals = torch.tensor(totals or [0.0] * (len(self.names) + 1), dtype=torch.float64, device=device)
        self.restart()

    def add(self, stats: torch.Tensor, n: int) -> None:
        self.totals += torch.cat([stats.to(self.totals), self.totals.new_tensor([float(n)])])

    def reset(self) -> None:
        self.totals.zero_()
        self.restored, self.start = 0.0, time.perf_counter()

    def restart(self) -> None:
        """Time from now, counting what the sums already hold as not this session's."""
        self.restored = float(self.totals[-1])
        self.start = time.perf_counter()

    def read(self, ctx: DistContext) -> dict[str, float]:
        """``train_<stat>`` per sample and images/s over every process (a collective: all ranks call it)."""
        *sums, seen = ctx.all_reduce_sum(self.totals).tolist()
        n = max(seen, 1.0)
        new = seen - ctx.world_size * self.restored
        out = {f"train_{name}": total / n for name, total in zip(self.names, sums, strict=True)}
        out["images_per_second"] = new / max(time.perf_counter() - self.start, 1e-9)
        return out


@dataclass
class TrainState:
    """The resume state. ``epoch`` counts the epochs on record (trained, evaluated, a row in
    metrics.csv); ``batch_in_epoch`` the batches of the next one already trained, which a resumed
    run skips (its loader replays the same order and augmentations). The sums are this rank's."""

    epoch_sums: StatSums  # the current epoch's step statistics, for its row of metrics.csv
    window_sums: StatSums  # those since the last row of steps.csv
    epoch: int = 0
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0
    best: dict[str, Any] | None = None  # the epoch row best.pt was saved at
    seconds: float = 0.0  # training and evaluation, over every session of the run

    def close_epoch(self, row: dict[str, Any], best: bool) -> None:
        """The epoch's row is on record: a resumed run starts the next epoch."""
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        if best:
            self.best = row

    def to_checkpoint(self, ctx: DistContext) -> dict[str, Any]:
        """The checkpoint's resume keys. Every rank's RNG state and sums, in rank order (a
        collective), so each rank resumes its own streams and every log row comes out as an
        uninterrupted run writes it."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "seconds": self.seconds,
            "rng": ctx.gather(rng_state()),
            "epoch_totals": ctx.gather(self.epoch_sums.totals.tolist()),
            "window_totals": ctx.gather(self.window_sums.totals.tolist()),
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], rank: int, device: torch.device, names: Sequence[str]) -> TrainState:
        """What ``ckpt`` saved, with this rank's sums; this rank's RNG is set where it was."""
        own = min(rank, len(ckpt["rng"]) - 1)  # a rank the checkpoint has no state for takes the last one's
        set_rng_state(ckpt["rng"][own])
        in_epoch = ckpt.get("batch_in_epoch", 0)
        epoch_totals = ckpt["epoch_totals"][own] if ckpt.get("epoch_totals") and in_epoch else None
        window_totals = ckpt["window_totals"][own] if ckpt.get("window_totals") else None
        return cls(
            StatSums(device, names, epoch_totals),
            StatSums(device, names, window_totals),
            epoch=ckpt.get("epoch", 0),
            step=ckpt.get("step", 0),
            batch_in_epoch=in_epoch,
            best=ckpt.get("best"),
            seconds=ckpt.get("seconds", 0.0),
        )
