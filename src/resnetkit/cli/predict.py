"""``resnetkit predict``: what a trained model sees in image files."""

from __future__ import annotations

import argparse
import json

from .options import add_max_image_pixels, add_tta_shift


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of image files for a trained model")
    p.add_argument(
        "source", help="checkpoint (.pt), run folder, .safetensors from resnetkit, or tag (resnet20.fashion_mnist)"
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average over the image and its mirror (default: as the model's training evaluated)",
    )
    add_tta_shift(p)
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "int8", "fp32"],
        help="auto: the fast path (OpenVINO or PyTorch, BN folded, bf16 where the CPU has it); bf16; "
        "int8: static quantization calibrated on the model's training images; "
        "fp32: the model as it is, the reference (an .onnx file runs in ONNX Runtime either way)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument(
        "--out",
        default="predictions",
        help="segmentation and detection models: folder for the PNGs with masks or boxes drawn (default: predictions)",
    )
    p.add_argument("--min-score", type=float, default=0.3, help="detection: draw and list boxes scoring at least this")
    add_max_image_pixels(p)
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    import sys

    from ..infer import fast_path, load_source, path_of
    from ..infer.predict import predict_files
    from ..tasks import PredictOptions, task_of

    if args.top_k < 1:
        raise ValueError(f"--top-k {args.top_k}: must be at least 1")
    model = load_source(args.source)
    task = task_of(model)
    runner = fast_path(model, args.precision)
    options = PredictOptions(
        top_k=args.top_k, tta_flip=args.tta_flip, tta_shift=args.tta_shift, min_score=args.min_score
    )
    records = predict_files(runner, args.images, options, out_dir=args.out)
    print(f"inference path: {path_of(runner)}", file=sys.stderr)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for r in records:
        drawn = f"  -> {r['picture']}" if "picture" in r else ""
        print(f"{r['image']}: {task.describe(r)}{drawn}")
    return 0
