"""``resnetkit export``: a trained model as ONNX, a torch.export program or TorchScript, kept only
if it reproduces the model on real images."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from .labels import source_label


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model (ONNX, torch.export .pt2, TorchScript), checked against PyTorch",
        description="The model is exported in eval mode with BatchNorm folded into the convolutions, a dynamic "
        "batch dimension, and its preprocessing and class names stored in the file. It is then run on up to "
        "--images of its own test images next to the PyTorch model in fp32; the file is kept only with 100%% "
        "top-1 agreement and a largest logit difference within --rtol of the largest logit.",
    )
    p.add_argument(
        "source", help="checkpoint (.pt), run folder, .safetensors from resnetkit, or tag (resnet20.fashion_mnist)"
    )
    p.add_argument("--format", default="onnx", choices=["onnx", "pt2", "torchscript"])
    p.add_argument("-o", "--out", help="the file to write (default: NAME.onnx / .pt2 / .ts in the current folder)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument("--images", type=int, default=256, help="test images for the parity check (default: 256)")
    p.add_argument(
        "--rtol", type=float, default=1e-4, help="largest logit difference allowed, relative (default: 1e-4)"
    )
    p.add_argument(
        "--features-only",
        action="store_true",
        help="export the backbone: one output per feature level (stem and stages), no head",
    )
    p.add_argument("--json", action="store_true", help="print the path and the parity figures as JSON")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable, load_model
    from ..infer import FORMATS, export_model
    from ..infer.dense_export import DenseNetwork
    from ..models import FeatureListNet
    from ..tasks import task_of

    out = Path(args.out or source_label(args.source).replace("/", "-") + FORMATS[args.format])
    ensure_writable(out.parent if str(out.parent) else Path("."), "-o")
    if args.images < 1:
        raise ValueError(f"--images {args.images}: must be at least 1")
    loaded = load_model(args.source)
    task = task_of(loaded)
    network: Any = task.export_network(loaded)
    if args.features_only:
        if network is not loaded:
            raise ValueError(f"--features-only: a {task.name} model exports its whole network")
        network = FeatureListNet(loaded, None)
    inputs, real = task.parity_inputs(loaded if args.features_only else network, args.images)
    path, parity = export_model(network, out, args.format, args.opset, inputs=inputs, rtol=args.rtol, real=real)
    if args.json:
        print(json.dumps({"path": str(path), "format": args.format, **dataclasses.asdict(parity)}))
        return 0
    print(parity.line())
    if isinstance(network, DenseNetwork):
        print(f"outputs: {', '.join(network.output_names)}; post-processing {network.post_processing()}")
    print(f"wrote {path}")
    return 0
