"""Training throughput: the fp32 NCHW eager baseline against resnetkit's fast path, in one run.

    python benchmarks/train_throughput.py [--model resnet20] [--batch-size 128] [--steps 30] [--compile]

Prints images/s for each configuration and its ratio to the baseline; the ratio is what carries
across machines (absolute figures drift run to run). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from resnetkit import create_model
from resnetkit.train.precision import Precision


def measure(
    model_name: str,
    batch: int,
    steps: int,
    size: int,
    in_chans: int,
    channels_last: bool,
    precision: str,
    compile_: bool,
    warmup: int = 5,
) -> float:
    torch.manual_seed(0)
    model = create_model(model_name, in_chans=in_chans)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    run = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    prec = Precision(precision, torch.device("cpu"))
    x = torch.randn(batch, in_chans, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, model.num_classes, (batch,))
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        with prec.autocast():
            loss = F.cross_entropy(run(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--in-chans", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="also measure torch.compile on the fast path")
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args()
    configs = [
        ("fp32 NCHW eager (baseline)", False, "fp32", False),
        ("fp32 channels_last", True, "fp32", False),
        ("bf16 autocast NCHW", False, "auto", False),
        ("bf16 autocast channels_last (fast path)", True, "auto", False),
    ]
    if a.compile:
        configs.append(("fast path + torch.compile", True, "auto", True))
    print(
        f"{a.model}, batch {a.batch_size}, {a.in_chans}x{a.image_size}x{a.image_size}, "
        f"{torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    results, base = [], None
    for name, cl, prec, comp in configs:
        rate = measure(a.model, a.batch_size, a.steps, a.image_size, a.in_chans, cl, prec, comp)
        base = base or rate
        results.append({"config": name, "images_per_second": rate, "ratio": rate / base})
        print(f"  {name:<42} {rate:8.0f} img/s   x{rate / base:.2f}", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"model": a.model, "batch_size": a.batch_size, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
