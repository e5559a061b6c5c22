"""``resnetkit gradcam``: Grad-CAM heat maps (Selvaraju et al. 2017) of image files, one PNG and one
JSON per image, never overwriting without ``--overwrite``; for a sequence model, the class
activation map over time (Wang et al. 2017, Fig. 4) of each series or text, drawn over it."""

from __future__ import annotations

import argparse
from pathlib import Path

from .labels import is_model_name
from .options import add_max_image_pixels


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcam",
        help="Grad-CAM heat maps (Selvaraju et al. 2017) over images; for a sequence model, the class "
        "activation map over time (Wang et al. 2017) over each series (.npz, numbers) or text",
    )
    p.add_argument(
        "source", metavar="SOURCE", help="checkpoint, run folder, weights, pretrained tag, or a model name (untrained)"
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--layer", help="module to explain (default: the last stage)")
    p.add_argument("--class", dest="target_class", type=int, help="class to explain (default: each image's prediction)")
    p.add_argument("-o", "--out", default="runs/analysis", help="output folder (default: runs/analysis)")
    p.add_argument("--overwrite", action="store_true", help="replace maps an earlier run wrote under the same names")
    p.add_argument("--grid", action="store_true", help="also draw every image in one figure (OUT/gradcam-grid.png)")
    add_max_image_pixels(p)
    p.set_defaults(func=_gradcam)


def _gradcam(args: argparse.Namespace) -> int:
    from ..analysis import grad_cam, write_json
    from ..analysis.plots import plot_gradcam
    from ..artifacts import ensure_writable, load_model, model_card
    from ..infer import load_images
    from ..models import create_model

    out = ensure_writable(Path(args.out), "-o")
    untrained = is_model_name(args.source)
    model = create_model(args.source) if untrained else load_model(args.source)
    if untrained:
        print(f"note: {args.source} is untrained (random weights); pass a checkpoint or tag for meaningful maps")
    if model.spatial_dims == 1:  # a sequence: the map is over time (CAM), not over an image
        return _time_cam(args, model, out)
    targets = _outputs(out, args.images)
    _refuse_overwrite(args, targets, out / "gradcam-grid.png" if args.grid else None)
    images = load_images(args.images, model)
    cam = grad_cam(model, images, args.layer, args.target_class)
    names = model_card(model).classes
    for i, (path, (png, js)) in enumerate(zip(args.images, targets, strict=True)):
        c, score = cam.classes[i], cam.scores[i]
        plot_gradcam(images[i : i + 1], cam[i], png, names)
        row = {
            "image": str(path),
            "layer": cam.layer,
            "class": c,
            "class_name": names[c] if names else None,
            "logit": score,
        }
        write_json(row, js)
        label = f"{c} ({names[c]})" if names else str(c)
        print(f"{path}: class {label}, logit {score:.2f} -> {png}")
    if args.grid:
        print(f"grid: {plot_gradcam(images, cam, out / 'gradcam-grid.png', names)}")
    print(f"layer: {cam.layer}")
    return 0


def _time_cam(args: argparse.Namespace, model, out: Path) -> int:
    """Wang et al. 2017's class activation map of each series or text, drawn over it."""
    from ..analysis import write_json
    from ..analysis.plots import plot_time_cam
    from ..analysis.time_cam import class_activation_map
    from ..artifacts import model_card
    from ..tasks import task_of

    if args.layer or args.grid:
        raise ValueError(
            "--layer and --grid: a sequence model's map over time reads its last features, one figure each"
        )
    card = model_card(model)
    items = [item for source in args.images for item in task_of(model).read(source, model)]
    targets = _outputs(out, [item.name for item in items], "cam")
    _refuse_overwrite(args, targets, None)
    cam = class_activation_map(model, [item.input for item in items], args.target_class)
    names = card.classes
    for i, (item, (png, js)) in enumerate(zip(items, targets, strict=True)):
        c = cam.classes[i]
        label = f"{c} ({names[c]})" if names else str(c)
        text = bytes(item.image.flatten().tolist()) if model.vocab_size is not None else None
        plot_time_cam(item.image, cam.maps[i], png, f"{item.name[:60]}: class {label}, logit {cam.scores[i]:.2f}", text)
        write_json({"input": item.name, "class": c, "class_name": names[c] if names else None,
                    "logit": cam.scores[i], "cam": cam.maps[i][: item.size[1]].tolist()}, js)  # fmt: skip
        print(f"{item.name}: class {label}, logit {cam.scores[i]:.2f} -> {png}")
    print("class activation map over time (Wang et al. 2017): the last features weighted by the head")
    return 0


def _refuse_overwrite(args: argparse.Namespace, targets: list[tuple[Path, Path]], grid: Path | None) -> None:
    if args.overwrite:
        return
    taken = [str(p) for pair in targets for p in pair if p.exists()]
    if grid is not None and grid.exists():
        taken.append(str(grid))
    if taken:
        raise ValueError(
            f"would overwrite {', '.join(taken[:3])}{' ...' if len(taken) > 3 else ''}; pass --overwrite, or another -o"
        )


def _outputs(out: Path, images: list[str], kind: str = "gradcam") -> list[tuple[Path, Path]]:
    """``OUT/STEM.gradcam.png`` and ``.json`` for each image; a stem seen before gets ``-2``, ``-3``..."""
    seen: dict[str, int] = {}
    pairs = []
    for image in images:
        stem = Path(image).stem or "input"
        seen[stem] = seen.get(stem, 0) + 1
        name = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
        pairs.append((out / f"{name}.{kind}.png", out / f"{name}.{kind}.json"))
    return pairs
