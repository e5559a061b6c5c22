"""``resnetkit bench``: speed of each path against the eager fp32 baseline of the same run."""

from __future__ import annotations

import argparse
import json
import sys


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="images/s of resnetkit's paths and the peers', as ratios to eager fp32 in the same run",
    )
    p.add_argument("--model", help="a registered model (default: resnet50 to infer, resnet20 to train)")
    p.add_argument("--task", default="infer", choices=["infer", "train"], help="what to measure (default: infer)")
    p.add_argument("--batch-size", type=int, help="default: 32 to infer, 128 to train")
    p.add_argument("--image-size", type=int, help="input side (default: 224, or 32 for CIFAR layouts; 28 to train)")
    p.add_argument("--seconds", type=float, default=3.0, help="how long each path's throughput is measured")
    p.add_argument("--steps", type=int, default=20, help="training steps measured per configuration (--task train)")
    p.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="leave out torch.compile (its compile takes about 25 s for ResNet-50 here)",
    )
    p.add_argument(
        "--grad-checkpointing",
        action="store_true",
        help="--task train: also measure the fast path with activation checkpointing (time and peak memory)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    if (args.batch_size is not None and args.batch_size < 1) or args.seconds <= 0 or args.steps < 1:
        raise ValueError("--batch-size and --steps must be at least 1 and --seconds above 0")
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    if args.task == "train":
        from ..train.bench import as_dicts, bench_training

        model = args.model or "resnet20"
        rates = bench_training(
            model,
            args.batch_size or 128,
            args.image_size or 28,
            steps=args.steps,
            with_compile=args.compile,
            log=log,
            with_checkpointing=args.grad_checkpointing,
        )
        if args.json:
            report = {"model": model, "task": "train", "baseline_ips": rates[0].images_per_second}
            print(json.dumps(report | {"configs": as_dicts(rates)}, indent=2))
        return 0
    from ..infer.bench import bench_inference

    result = bench_inference(
        args.model or "resnet50",
        args.batch_size or 32,
        args.image_size,
        args.seconds,
        with_compile=args.compile,
        log=log,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    best, peer = result.best, result.fastest_peer
    print(
        f"best: {best.name}, {best.images_per_second:.1f} img/s, {best.speedup:.2f}x eager fp32 "
        f"({result.threads} threads, batch {result.batch_size}, {result.image_size}px); auto is {result.auto_path}"
    )
    if peer is not None:
        ratio = best.images_per_second / peer.images_per_second
        print(f"fastest peer: {peer.name}, {peer.images_per_second:.1f} img/s: resnetkit at {ratio:.2f}x it")
    for name, why in result.not_measured.items():
        print(f"not measured: {name} ({why})")
    return 0
