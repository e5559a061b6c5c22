"""``resnetkit bench --task train``: training images/s of the eager fp32 NCHW baseline against the
configurations resnetkit's engine runs, in one process (ratios to the baseline of the same run),
and the peak memory of each (resident memory on CPU: VmHWM, reset before each configuration)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..models import create_model, to_channels_last
from ..runtime.memory import peak_memory, reset_peak
from .precision import Precision

# (name, channels_last, precision, torch.compile): the baseline first.
CONFIGS = [
    ("eager fp32 NCHW (baseline)", False, "fp32", False),
    ("fp32 channels_last", True, "fp32", False),
    ("bf16 autocast NCHW", False, "bf16", False),
    ("bf16 autocast channels_last (resnetkit's default with native bf16)", True, "bf16", False),
]
COMPILED = ("the same + torch.compile", True, "bf16", True)
CHECKPOINTED = ("the same + activation checkpointing", True, "bf16", False)


@dataclass
class TrainRate:
    name: str
    images_per_second: float
    speedup: float
    peak_memory: int  # bytes: the process's peak resident memory while this configuration ran


def train_rate(
    model_name: str,
    batch: int,
    steps: int,
    size: int,
    in_chans: int,
    channels_last: bool,
    precision: str,
    compiled: bool = False,
    warmup: int = 3,
    grad_checkpointing: bool = False,
) -> tuple[float, int]:
    """Images/s of ``steps`` SGD steps (forward, loss, backward, update) after ``warmup`` steps,
    and the peak memory meanwhile (model, optimizer state and activations)."""
    reset_peak(torch.device("cpu"))
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model(model_name, in_chans=in_chans)
    if channels_last:
        to_channels_last(model)
    # As train sets it: the reentrant variant, the general one under torch.compile (models/stage.py).
    model.set_grad_checkpointing(grad_checkpointing, reentrant=not compiled)
    run = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    prec = Precision(precision, torch.device("cpu"))
    x = torch.randn(batch, in_chans, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, model.num_classes, (batch,))
    start = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        with prec.autocast():
            loss = F.cross_entropy(run(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - start), peak_memory(torch.device("cpu"))


def bench_training(
    model_name: str = "resnet20",
    batch_size: int = 128,
    image_size: int = 28,
    in_chans: int = 1,
    steps: int = 20,
    with_compile: bool = False,
    log: Callable[[str], None] = print,
    with_checkpointing: bool = False,
) -> list[TrainRate]:
    """Each configuration's training images/s and its ratio to the eager fp32 NCHW baseline, and
    its peak memory. A configuration's peak is the process's: it can include what an earlier one
    left allocated, so compare peaks across fresh processes (``benchmarks/grad_checkpointing.py``)."""
    rates: list[TrainRate] = []
    extra = ([COMPILED] if with_compile else []) + ([CHECKPOINTED] if with_checkpointing else [])
    for name, channels_last, precision, compiles in CONFIGS + extra:
        ips, peak = train_rate(
            model_name,
            batch_size,
            steps,
            image_size,
            in_chans,
            channels_last,
            precision,
            compiles,
            grad_checkpointing=name == CHECKPOINTED[0],
        )
        base = rates[0].images_per_second if rates else ips
        rates.append(TrainRate(name, ips, ips / base, peak))
        log(f"{name:<68} {ips:8.0f} img/s {ips / base:6.2f}x  peak {peak / 2**20:7.0f} MB")
    return rates


def as_dicts(rates: list[TrainRate]) -> list[dict]:
    return [asdict(r) for r in rates]
