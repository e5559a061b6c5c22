"""glibc's malloc and resnetkit's two settings of it (``runtime.memory``): ``hold_freed_memory``,
what CPU training runs with, and ``return_freed_memory``, what the memory guard switches to for a
step short of memory. Their effect on a step's peak memory and on the guard's estimate, and their
cost in training speed.

By default glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB):
later activations under it come from heap arenas, whose freed memory stays resident (and the
backward thread allocates from another arena than the forward's), so the resident peak grows
faster than the live tensors and not linearly in the batch, and the guard's two small probes miss
it; a block over 32 MiB is a fresh mmap every step, page-faulted in and zeroed by the kernel.
``return`` (thresholds at 128 KiB) hands each freed tensor back to the OS; ``hold`` (at 1 GiB)
keeps every freed block for reuse.

    python benchmarks/malloc_threshold.py memory resnet110 128 CKPT MODE   (CKPT: 0 or 1; MODE: default, hold, return)
    python benchmarks/malloc_threshold.py speed [--model resnet20] [--batch-size 128] [--rounds 3]

``memory`` prints the peak RSS above the process baseline of steps on 1/8, 1/4 and all of the batch
(MB, seconds) and the guard's straight-line extension of the first two to the batch. ``speed``
times training steps in fresh processes, the three settings taking turns, and prints each one's
images/s and the ratio of its median to the default's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from resnetkit.models import create_model
from resnetkit.runtime.memory import current_rss, hold_freed_memory, peak_memory, reset_peak, return_freed_memory

MODES = {"default": lambda: True, "hold": hold_freed_memory, "return": return_freed_memory}


def memory(name: str, batch: int, ck: bool, mode: str) -> None:
    MODES[mode]()
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    m = create_model(name, num_classes=10, in_chans=3).to(memory_format=torch.channels_last).train()
    m.set_grad_checkpointing(ck)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    base = current_rss()
    out = {}
    for n in (batch // 8, batch // 4, batch):
        reset_peak(cpu)
        t = time.perf_counter()
        torch.nn.functional.cross_entropy(m(x[:n]), y[:n]).backward()
        if n == batch:
            opt.step()
        opt.zero_grad(set_to_none=True)
        out[n] = ((peak_memory(cpu) - base) >> 20, round(time.perf_counter() - t, 1))
    n1, n2 = batch // 8, batch // 4
    est = out[n2][0] + (out[n2][0] - out[n1][0]) / (n2 - n1) * (batch - n2)
    print(name, batch, "ckpt" if ck else "plain", mode, "base", base >> 20, out, "est", int(est))


def one_rate(model: str, batch: int, steps: int, mode: str) -> float:
    """Training images/s in this process (fp32, channels_last, as resnetkit trains on CPU)."""
    from resnetkit.train.bench import train_rate

    MODES[mode]()
    return train_rate(model, batch, steps, 28, 1, True, "fp32")[0]


def speed(model: str, batch: int, steps: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in rates:
            code = f"import sys; sys.path.insert(0, {sys.path[0]!r}); import malloc_threshold as m; " + (
                f"print(m.one_rate({model!r}, {batch}, {steps}, {mode!r}))"
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rates[mode].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"{mode:8s} {rates[mode][-1]:7.0f} img/s", flush=True)
    base = statistics.median(rates["default"])
    ratios = {mode: statistics.median(r) / base for mode, r in rates.items()}
    record = {"model": model, "batch": batch, "steps": steps, "images_per_second": rates, "vs_default": ratios}
    print(json.dumps(record))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("memory")
    m.add_argument("model")
    m.add_argument("batch", type=int)
    m.add_argument("ckpt", choices=("0", "1"))
    m.add_argument("mode", choices=tuple(MODES))
    s = sub.add_parser("speed")
    s.add_argument("--model", default="resnet20")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    if a.what == "memory":
        memory(a.model, a.batch, a.ckpt == "1", a.mode)
    else:
        speed(a.model, a.batch_size, a.steps, a.rounds)


if __name__ == "__main__":
    main()
