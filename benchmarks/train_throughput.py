"""Training throughput: the fp32 NCHW eager baseline against resnetkit's fast path, in one run.

    python benchmarks/train_throughput.py [--model resnet20] [--batch-size 128] [--steps 30] [--compile]

The same measurement as ``resnetkit bench --task train`` (resnetkit.train.bench). Prints images/s
for each configuration and its ratio to the baseline; the ratio is what carries across machines
(absolute figures drift run to run). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json

import torch

from resnetkit.train.bench import as_dicts, bench_training


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
    print(
        f"{a.model}, batch {a.batch_size}, {a.in_chans}x{a.image_size}x{a.image_size}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    rates = bench_training(a.model, a.batch_size, a.image_size, a.in_chans, a.steps, a.compile)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"model": a.model, "batch_size": a.batch_size, "results": as_dicts(rates)}, fh, indent=2)


if __name__ == "__main__":
    main()
