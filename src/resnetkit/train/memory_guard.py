"""The memory guard: before the first optimizer step, estimate the step's peak memory and refuse,
in one line, a run that would not fit, rather than be killed by the OS part-way through it with no
message (the OOM killer sends SIGKILL: no checkpoint of that step, no traceback).

The estimate is measured, not modelled: the first batch's first ``n`` and ``2n`` images (``n`` an
eighth of the micro-batch) go forward and backward on the model as it will train (autocast,
checkpointing, frozen parts), each probe twice, and the peak memory of each (``runtime.memory``:
VmHWM on CPU, reserved memory on CUDA) is extended along the line through the two to the
micro-batch, since activations grow linearly with the batch; the optimizer's state, not allocated
before its first step, is added. Twice, because training repeats its step and the C allocator's
heap grows on the repeat (freed blocks that a same-sized request cannot reuse): one pass per probe
measured ResNet-110 with checkpointing at batch 128 at 0.97 GB where two steps take 1.2 GB, two
passes gave 1.2 GB. A probe that itself runs out of memory is a refusal, not a crash.

The probes leave no trace: BatchNorm statistics, gradients and RNG states are put
back, so a guarded run equals an unguarded one bit for bit."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from ..runtime.memory import (
    MEMORY_LIMIT_ENV,
    Budget,
    current_rss,
    format_size,
    memory_budget,
    peak_memory,
    reset_peak,
    return_freed_memory,
    trim_freed_memory,
)
from .hooks import HookBase

log = logging.getLogger("resnetkit.train")


class MemoryGuardError(ValueError):
    """The training step would need more memory than the machine has for it."""


@dataclass(frozen=True)
class StepMemory:
    peak: int  # estimated peak memory of one micro-batch's step, bytes
    probes: tuple[tuple[int, int], ...]  # (images, measured peak) of each probe
    batch: int  # the micro-batch the estimate is for
    exhausted: int = 0  # images of a probe that ran out of memory itself (0: none did)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes the optimizer's state will take after its first step, when it has none yet: SGD keeps
    one momentum buffer per parameter, Adam(W) two moments."""
    if optimizer.state:
        return 0  # already allocated (a resumed run): part of the memory measured
    total = 0
    for group in optimizer.param_groups:
        slots = 2 if "betas" in group else int(group.get("momentum", 0) > 0)
        total += slots * sum(p.numel() * p.element_size() for p in group["params"] if p.requires_grad)
    return total


PROBE_PASSES = 2  # forward + backward passes per probe (see the module's docstring)


# How a failed CPU allocation reads: PyTorch's allocator, or oneDNN, which reports a scratch buffer
# it could not allocate as a primitive it could not create (seen under RLIMIT_DATA in CI, in the
# backward of a convolution).
CPU_OUT_OF_MEMORY = ("can't allocate memory", "not enough memory", "could not create a primitive")


def _out_of_memory(error: BaseException) -> bool:
    """An allocation that failed: CUDA's OutOfMemoryError, or the CPU's RuntimeError."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in CPU_OUT_OF_MEMORY)


def estimate_step_memory(trainer, x: torch.Tensor, y, batch: int) -> StepMemory | None:
    """The peak memory of a step on ``batch`` images, extrapolated from two probes on the first
    images of ``x`` (None where the batch is too small to extrapolate from, or the peak cannot be
    measured here; ``exhausted`` set where a probe could not allocate what it needed)."""
    n1 = max(2, batch // 8)  # BatchNorm needs two images; an eighth keeps the probes' cost down
    n2 = 2 * n1
    if n2 >= batch or not reset_peak(trainer.device):
        return None
    model, task, device = trainer.model, trainer.task, trainer.device
    buffers = [(b, b.clone()) for b in model.buffers()]
    devices = [device.index or 0] if device.type == "cuda" else []
    probes: list[tuple[int, int]] = []
    exhausted = 0
    try:
        with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
            for n in (n1, n2):
                if device.type == "cpu":
                    trim_freed_memory()  # held for reuse (hold_freed_memory), freed blocks would hide the need
                reset_peak(device)
                exhausted = n
                for _ in range(PROBE_PASSES):
                    with trainer.precision.autocast():
                        outputs = task.forward(model, x[:n], y[:n])
                        loss = task.loss(outputs, y[:n])
                    loss.backward()
                    del outputs, loss
                    for p in model.parameters():
                        p.grad = None
                exhausted = 0
                probes.append((n, peak_memory(device)))
    except (RuntimeError, torch.OutOfMemoryError) as error:
        if not _out_of_memory(error):
            raise
    finally:
        for p in model.parameters():
            p.grad = None
        with torch.no_grad():
            for buf, value in buffers:
                buf.copy_(value)
    if exhausted:
        return StepMemory(0, tuple(probes), batch, exhausted)
    (a, pa), (b, pb) = probes
    per_image = max(0, pb - pa) / (b - a)
    peak = int(pb + per_image * (batch - b)) + optimizer_state_bytes(trainer.optimizer)
    return StepMemory(peak, tuple(probes), batch)


# The estimate may fall short of the step it is for: on an H200 it came within 13% of the memory
# PyTorch reserved (benchmarks/README.md), on the CPU within 2% where freed memory is returned to
# the OS (runtime.memory.return_freed_memory). A step that fits only without this margin is refused.
SAFETY_MARGIN = 0.15
# A CPU step estimated above this share of the memory available has its freed memory returned to
# the OS from then on (runtime.memory.return_freed_memory): a lower peak, paid for in page faults,
# which cost a small net's steps much of their speed, so only where memory is short.
TIGHT = 0.5


def check_fits(need: StepMemory, budget: Budget, processes: int) -> str | None:
    """The refusal, or None when the step, plus ``SAFETY_MARGIN``, fits. ``processes`` on this
    machine share a CPU budget."""
    if not need.exhausted and need.peak * (1 + SAFETY_MARGIN) <= budget.limit:
        return None
    per = " a process" if processes > 1 else ""
    if need.exhausted:
        measured = (
            f"a training step needs more memory than there is{per}: the memory guard's probe on {need.exhausted} "
            f"of the step's {need.batch} images already ran out of it ({format_size(budget.limit)} available, "
            f"{budget.source})"
        )
    else:
        measured = (
            f"a training step needs about {format_size(need.peak)}{per} (measured on {need.probes[0][0]} and "
            f"{need.probes[1][0]} images, extended to the step's {need.batch}; {SAFETY_MARGIN:.0%} more is kept "
            f"free in case that is low) but {format_size(budget.limit)} is available ({budget.source})"
        )
    return (
        f"{measured}: add --grad-checkpointing (activations recomputed in the backward: a "
        "fraction of the memory for about 1.3x the time) or use a smaller --batch-size (or --grad-accum-steps); "
        "--no-memory-guard runs it anyway"
    )


class MemoryGuard(HookBase):
    """Checks the first step of each session (a resumed run is checked again); every rank measures
    its own share and all stop together when one would not fit."""

    def __init__(self) -> None:
        self.checked = False

    def before_step(self) -> None:
        if self.checked:
            return
        self.checked = True
        t = self.trainer
        x, y = t.batch
        parts = min(t.cfg.grad_accum_steps, t.task.batch_size(y))
        need = estimate_step_memory(t, x, y, t.task.batch_size(y) // parts)
        budget = memory_budget(t.device)
        refusal = None
        if need is not None and budget is not None:
            # Processes of one machine share its RAM; each GPU has its own memory.
            local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if t.device.type == "cpu" else 1
            if local > 1 and budget.source != MEMORY_LIMIT_ENV:  # the override is each process's own
                rss = current_rss()
                budget = Budget(rss + (budget.limit - rss) // local, f"{budget.source}, shared by {local} processes")
            refusal = check_fits(need, budget, local)
            tight = refusal is None and t.device.type == "cpu" and need.peak > TIGHT * budget.limit
            if tight and return_freed_memory():
                log.info("memory guard: memory is tight, so freed activations go back to the OS (a lower peak)")
            if not need.exhausted:
                log.info(
                    "memory guard: a step needs about %s of %s available (%s)",
                    format_size(need.peak),
                    format_size(budget.limit),
                    budget.source,
                )
        elif need is not None and need.exhausted:  # no limit known here, and still out of memory
            refusal = check_fits(need, Budget(current_rss(), "what this process could allocate"), 1)
        refusals = [r for r in t.ctx.gather(refusal) if r is not None]
        if refusals:
            raise MemoryGuardError(refusals[0])
