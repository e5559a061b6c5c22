"""``resnetkit bench``: inference speed of each path against the eager fp32 baseline of the same run."""

from __future__ import annotations

import argparse
import json
import sys


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="inference images/s and batch-1 latency of each path, as ratios to eager fp32 in the same run",
    )
    p.add_argument("--model", default="resnet50", help="a registered model (default: resnet50)")
    p.add_argument("--task", default="infer", choices=["infer"], help="what to measure (infer; train: not yet)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, help="input side (default: 224, or 32 for CIFAR layouts)")
    p.add_argument("--seconds", type=float, default=3.0, help="how long each path's throughput is measured")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from ..infer.bench import bench_inference

    if args.batch_size < 1 or args.seconds <= 0:
        raise ValueError("--batch-size must be at least 1 and --seconds above 0")
    result = bench_inference(
        args.model,
        args.batch_size,
        args.image_size,
        args.seconds,
        log=(lambda line: print(line, file=sys.stderr)) if args.json else print,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    best = result.best
    print(
        f"best: {best.name}, {best.images_per_second:.1f} img/s, {best.speedup:.2f}x eager fp32 "
        f"({result.threads} threads, batch {result.batch_size}, {result.image_size}px)"
    )
    for peer, why in result.not_measured.items():
        print(f"not measured: {peer} ({why})")
    return 0
