"""``resnetkit publish``: a finished run as shipped weights (``NAME.TAG.safetensors`` + its card)."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish",
        help="ship a finished run as NAME.TAG.safetensors + NAME.TAG.json (its card)",
        description="Measure a finished run's test accuracy (with and without flip TTA) and write "
        "its weights and card, so create_model(NAME.TAG, pretrained=True) and eval "
        "need nothing else.",
    )
    p.add_argument("run", help="a finished run folder")
    p.add_argument("tag", help="the pretrained tag, e.g. fashion_mnist")
    p.add_argument("--out", help="folder for the two files (default: resnetkit's own weights folder)")
    p.add_argument(
        "--checkpoint", help="the run's checkpoint to ship (default: best.pt if the run kept one, else last.pt)"
    )
    p.add_argument("--note", help="a sentence for the card")
    p.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    import torch

    from ..infer.publish import DEFAULT_OUT, publish_run

    torch.set_grad_enabled(False)
    for path in publish_run(args.run, args.tag, args.out or DEFAULT_OUT, checkpoint=args.checkpoint, note=args.note):
        print(path)
    return 0
