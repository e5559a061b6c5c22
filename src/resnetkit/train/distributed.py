"""Process-group set-up for torchrun: the environment it exports is the whole interface."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this context joined the process group, so it leaves it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            t = t.clone()
            dist.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self, finished: bool) -> None:
        """Leave the process group this context joined. A finished run first waits for every rank:
        the rank whose process hosts the rendezvous store must not exit while others still talk to
        it, and a process that exits without destroying its gloo group can abort in teardown."""
        if not (self.owns_group and dist.is_initialized()):
            return
        if finished:
            dist.barrier()
        dist.destroy_process_group()

    def gather(self, value) -> list:
        """``value`` from every rank, in rank order (any picklable object)."""
        if not self.enabled:
            return [value]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's BN running statistics to every rank: each rank updated its own from its own
        shard since DDP's last broadcast, and evaluation must see one model."""
        if self.enabled:
            for b in module.buffers():
                dist.broadcast(b, 0)


def init_distributed(device_name: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU."""
    from ..runtime import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), resolve_device(device_name)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, owns), device


def restart_count() -> int:
    """How often torchrun's elastic agent has restarted this worker group (0 on the first try)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def elastic_run_name() -> str | None:
    """A run-folder name that stays the same across torchrun restarts: the rendezvous id
    (``--rdzv-id``, or the one ``--standalone`` draws), so restarted workers find their checkpoint."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    return None if run_id in (None, "", "none") else f"torchrun-{run_id}"
