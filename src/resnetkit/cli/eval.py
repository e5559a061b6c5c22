"""``resnetkit eval``: a saved model's accuracy, per-class accuracy and confusion on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .labels import source_label
from .options import add_max_image_pixels


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
    p.add_argument("--out", help="folder for confusion.png and eval.json (default: runs/eval/NAME)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_max_image_pixels(p)
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable
    from ..infer import evaluate_source

    out = ensure_writable(Path(args.out or Path("runs/eval") / source_label(args.source).replace("/", "-")))
    report = evaluate_source(
        args.source,
        data=args.data,
        data_dir=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        out=out,
        tta_flip=args.tta_flip,
        precision=args.precision,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['source']} on {report['data']} ({report['split']}, n={report['n']})")
    if report.get("task") in ("segmentation", "detection"):
        return _print_dense(report)
    print(
        f"top-1 {100 * report['top1']:.2f}%   top-5 {100 * report['top5']:.2f}%   loss {report['loss']:.4f}   "
        + ("with flip TTA (--no-tta-flip: without)" if report["tta_flip"] else "without TTA")
    )
    print(
        f"inference path: {report['path']}" + ("" if args.precision == "fp32" else " (--precision fp32: the reference)")
    )
    width = max(len(c) for c in report["per_class"])
    print("per-class accuracy:")
    for name, acc in report["per_class"].items():
        print(f"  {name:<{width}}  {100 * acc:6.2f}%")
    print("confusion matrix (rows: true, columns: predicted):")
    for row in report["confusion"]:
        print("  " + " ".join(f"{v:5d}" for v in row))
    if report.get("confusion_png"):
        print(f"confusion plot: {report['confusion_png']}")
    return 0


def _print_dense(report: dict) -> int:
    if report["task"] == "segmentation":
        print(f"mIoU {100 * report['miou']:.2f}%   pixel accuracy {100 * report['pixel_acc']:.2f}%")
        print("per-class IoU:")
        for name, iou in report["iou"].items():
            print(f"  {name:<14} " + ("     -" if iou is None else f"{100 * iou:6.2f}%"))
    else:
        print(f"mAP@[.5:.95] {100 * report['map']:.2f}%   mAP@.5 {100 * report['map50']:.2f}%  (pycocotools)")
        print("per-class AP@[.5:.95]:")
        for name, ap in report["per_class_ap"].items():
            print(f"  {name:<14} {100 * ap:6.2f}%")
    return 0
