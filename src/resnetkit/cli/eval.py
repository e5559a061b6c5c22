"""``resnetkit eval``: a saved model's accuracy, per-class accuracy and confusion on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .labels import source_label
from .options import add_max_image_pixels, add_tta_shift


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint, weights file or pretrained tag")
    p.add_argument(
        "source", help="checkpoint (.pt), run folder, .safetensors from resnetkit, or tag (resnet20.fashion_mnist)"
    )
    p.add_argument("--data", help="dataset (default: the one the model was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "int8", "fp32"],
        help="auto: the fast path (bf16 where the CPU has it); int8: calibrated on the model's training "
        "images; fp32: the model as it is, the reference",
    )
    p.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average predictions on the image and its mirror (default: as the model's training evaluated)",
    )
    add_tta_shift(p)
    p.add_argument("--out", help="folder for confusion.png and eval.json (default: runs/eval/NAME)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_max_image_pixels(p)
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable
    from ..infer import evaluate_source
    from ..tasks import get_task

    out = ensure_writable(Path(args.out or Path("runs/eval") / source_label(args.source).replace("/", "-")))
    report = evaluate_source(
        args.source,
        data=args.data,
        data_dir=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        out=out,
        tta_flip=args.tta_flip,
        tta_shift=args.tta_shift,
        precision=args.precision,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['source']} on {report['data']} ({report['split']}, n={report['n']})")
    lines = get_task(report["task"]).from_options().summary(report)
    print(lines[0])
    reference = "" if args.precision == "fp32" else " (--precision fp32: the reference)"
    print(f"inference path: {report['path']}{reference}")
    print("\n".join(lines[1:]))
    if report.get("confusion_png"):
        print(f"confusion plot: {report['confusion_png']}")
    return 0
