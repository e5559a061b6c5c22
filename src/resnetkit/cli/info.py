"""``resnetkit info``: the model table."""

from __future__ import annotations

import argparse
import json
import sys


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="table of models: parameters, GMACs, depth")
    p.add_argument(
        "patterns", nargs="*", metavar="PATTERN", help="glob(s) over model names, e.g. 'resnet*' (default: all)"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input side for GMACs (default: 224 for ImageNet layouts, 32 for CIFAR ones)",
    )
    p.add_argument("--in-chans", type=int, default=3)
    p.add_argument(
        "--task",
        default="classification",
        choices=["classification", "segmentation", "detection"],
        help="which models: classifiers (default), or the dense ones",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    from ..models import list_models
    from ..models.profile import profile_model
    from ..tasks import get_task
    from ..tasks.dense import DenseTask

    names = list_models(args.patterns or "*", task=args.task)
    if not names:
        print(f"no model matches {' '.join(args.patterns)}; `resnetkit info` lists all", file=sys.stderr)
        return 2
    if issubclass(get_task(args.task), DenseTask):  # no GMACs table: a detector's cost depends on its image
        return _dense_info(names, args.json)
    if args.json:
        rows = []
        for i, name in enumerate(names, 1):
            # Every model is built and traced on the meta device: seconds for the deepest, so say so.
            print(f"\rprofiling {i}/{len(names)}: {name:<24}", end="", file=sys.stderr, flush=True)
            rows.append(profile_model(name, args.image_size, args.in_chans).as_dict())
        print("\r" + " " * 48 + "\r", end="", file=sys.stderr, flush=True)
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<20} {'params':>12} {'GMACs':>9} {'@size':>6} {'depth':>6}", flush=True)
    for name in names:  # a row as soon as it is measured
        r = profile_model(name, args.image_size, args.in_chans).as_dict()
        print(f"{r['name']:<20} {r['params']:>12,} {r['gmacs']:>9.3f} {r['image_size']:>6} {r['depth']:>6}", flush=True)
    return 0


def _dense_info(names: list[str], as_json: bool) -> int:
    """Name, backbone and parameters (torchvision's class counts: 21 for segmentation, 91 for detection)."""
    import torch

    from ..models import create_model, model_task

    rows = []
    for name in names:
        with torch.device("meta"):
            model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        rows.append({"name": name, "task": model_task(name), "params": params, "num_classes": model.num_classes})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<28} {'task':<13} {'params':>12} {'classes':>8}")
    for r in rows:
        print(f"{r['name']:<28} {r['task']:<13} {r['params']:>12,} {r['num_classes']:>8}")
    return 0
