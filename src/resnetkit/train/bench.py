"""``resnetkit bench --task train``: training images/s of the eager fp32 NCHW baseline against the
configurations resnetkit's engine runs, in one process (ratios to the baseline of the same run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..models import create_model, to_channels_last
from .precision import Precision

# (name, channels_last, precision, torch.compile): the baseline first.
CONFIGS = [
    ("eager fp32 NCHW (baseline)", False, "fp32", False),
    ("fp32 channels_last", True, "fp32", False),
    ("bf16 autocast NCHW", False, "bf16", False),
    ("bf16 autocast channels_last (resnetkit's default with native bf16)", True, "bf16", False),
]
COMPILED = ("the same + torch.compile", True, "bf16", True)


@dataclass
class TrainRate:
    name: str
    images_per_second: float
    speedup: float


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
) -> float:
    """Images/s of ``steps`` SGD steps (forward, loss, backward, update) after ``warmup`` steps."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model(model_name, in_chans=in_chans)
    if channels_last:
        to_channels_last(model)
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
    return steps * batch / (time.perf_counter() - start)


def bench_training(
    model_name: str = "resnet20",
    batch_size: int = 128,
    image_size: int = 28,
    in_chans: int = 1,
    steps: int = 20,
    with_compile: bool = False,
    log: Callable[[str], None] = print,
) -> list[TrainRate]:
    """Each configuration's training images/s and its ratio to the eager fp32 NCHW baseline."""
    rates: list[TrainRate] = []
    for name, channels_last, precision, compiles in CONFIGS + ([COMPILED] if with_compile else []):
        ips = train_rate(model_name, batch_size, steps, image_size, in_chans, channels_last, precision, compiles)
        base = rates[0].images_per_second if rates else ips
        rates.append(TrainRate(name, ips, ips / base))
        log(f"{name:<68} {ips:8.0f} img/s {ips / base:6.2f}x")
    return rates


def as_dicts(rates: list[TrainRate]) -> list[dict]:
    return [asdict(r) for r in rates]
