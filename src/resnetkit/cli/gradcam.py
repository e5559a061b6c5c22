"""``resnetkit gradcam``: Grad-CAM heat maps (Selvaraju et al. 2017) of image files."""

from __future__ import annotations

import argparse
from pathlib import Path

from .labels import is_model_name


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gradcam", help="Grad-CAM heat maps (Selvaraju et al. 2017) over images")
    p.add_argument(
        "source", metavar="SOURCE", help="checkpoint, run folder, weights, pretrained tag, or a model name (untrained)"
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--layer", help="module to explain (default: the last stage)")
    p.add_argument("--class", dest="target_class", type=int, help="class to explain (default: each image's prediction)")
    p.add_argument("-o", "--out", default="runs/analysis", help="output folder (default: runs/analysis)")
    p.set_defaults(func=_gradcam)


def _gradcam(args: argparse.Namespace) -> int:
    from ..analysis import grad_cam, write_json
    from ..analysis.plots import plot_gradcam
    from ..artifacts import load_model
    from ..infer import load_images
    from ..models import create_model

    untrained = is_model_name(args.source)
    model = create_model(args.source) if untrained else load_model(args.source)
    if untrained:
        print(
            f"note: {args.source} is untrained (random weights); pass a checkpoint or pretrained tag for meaningful maps"
        )
    images = load_images(args.images, model)
    cam = grad_cam(model, images, args.layer, args.target_class)
    names = (model.pretrained_cfg or {}).get("classes")
    out = Path(args.out)
    png = plot_gradcam(images, cam, out / "gradcam.png", names)
    rows = [
        {"image": str(p), "class": c, "class_name": names[c] if names else None, "logit": s}
        for p, c, s in zip(args.images, cam.classes, cam.scores)
    ]
    js = write_json({"layer": cam.layer, "images": rows}, out / "gradcam.json")
    for r in rows:
        label = f"{r['class']} ({r['class_name']})" if names else str(r["class"])
        print(f"{r['image']}: class {label}, logit {r['logit']:.2f}")
    print(f"layer: {cam.layer}\nplot: {png}\njson: {js}")
    return 0
