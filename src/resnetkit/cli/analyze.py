"""``resnetkit experiment degradation``, ``resnetkit analyze gradients|responses|lesion`` and
``resnetkit gradcam``: each a call into ``resnetkit.analysis`` plus its PNG and JSON."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from .labels import source_labels


def add_commands(sub) -> None:
    p = sub.add_parser("experiment", help="experiments that reproduce the paper's claims")
    exp = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    p = exp.add_parser("degradation", help="plain nets vs ResNets at several depths (He et al. 2015, Fig. 6)",
                       description="Train plain-D and resnet-D for each depth D with one recipe and seed; write "
                                   "curves.png, results.csv and report.md. Finished runs are reused and interrupted "
                                   "ones resumed, so the same command picks up where it stopped.")
    p.add_argument("--data", default="fashion-mnist", help="dataset name or image folder (default: fashion-mnist)")
    p.add_argument("--data-dir")
    p.add_argument("--depths", default="20,56", help="comma-separated depths (default: 20,56)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", default="paper-cifar", help="hyperparameters for every net (default: paper-cifar, §4.2)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any training config key, e.g. optim.weight_decay=5e-4")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-o", "--out", default="runs/degradation", help="output folder (default: runs/degradation)")
    p.set_defaults(func=_degradation)

    p = sub.add_parser("analyze", help="gradient flow, layer responses and lesion studies")
    an = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    p = an.add_parser("gradients", help="per-layer gradient norms and gradient correlation",
                      description="A model NAME is measured at initialization on random inputs; a trained SOURCE "
                                  "(checkpoint, run folder, weights or pretrained tag) on a real batch of its data.")
    p.add_argument("targets", nargs="+", metavar="MODEL_OR_SOURCE")
    p.add_argument("--no-norm", action="store_true", help="replace every BatchNorm by an identity (models at init only)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=32, help="input side at initialization (default: 32)")
    p.add_argument("--points", type=int, default=256, help="points on the input line for the gradient correlation")
    p.add_argument("--seed", type=int, default=0)
    _data_args(p)
    p.set_defaults(func=_gradients)

    p = an.add_parser("responses", help="std of each residual branch's output (He et al. 2015, Fig. 7)")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--images", type=int, default=1000, help="test images to measure on (default: 1000)")
    _data_args(p)
    p.set_defaults(func=_responses)

    p = an.add_parser("lesion", help="accuracy with each residual unit removed (Veit et al. 2016)")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--images", type=int, default=None, help="test images to measure on (default: all)")
    _data_args(p)
    p.set_defaults(func=_lesion)

    p = sub.add_parser("gradcam", help="Grad-CAM heat maps (Selvaraju et al. 2017) over images")
    p.add_argument("source", metavar="SOURCE", help="checkpoint, run folder, weights, pretrained tag, or a model name (untrained)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--layer", help="module to explain (default: the last stage)")
    p.add_argument("--class", dest="target_class", type=int, help="class to explain (default: each image's prediction)")
    p.add_argument("-o", "--out", default="runs/analysis", help="output folder (default: runs/analysis)")
    p.set_defaults(func=_gradcam)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset (default: the one each model was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("-o", "--out", default="runs/analysis", help="output folder (default: runs/analysis)")


def _degradation(args: argparse.Namespace) -> int:
    from ..analysis.degradation import run_degradation, write_degradation
    from ..train.config import updates

    try:
        depths = [int(d) for d in args.depths.split(",") if d.strip()]
    except ValueError:
        raise ValueError(f"--depths {args.depths!r}: expected comma-separated integers, e.g. 20,56") from None
    overrides = updates({
        ("data", "data_dir"): args.data_dir, ("data", "batch_size"): args.batch_size, ("optim", "lr"): args.lr,
        ("progress",): False if args.no_progress else None,
    }, args.set)
    result = run_degradation(args.data, depths, args.epochs, args.seed, args.out, args.recipe, overrides)
    paths = write_degradation(result, args.out, "resnetkit " + shlex.join(args.argv))
    for line in result.findings:
        print(line)
    print(f"report: {paths['report']}\ncurves: {paths['curves']}\nresults: {paths['results']}")
    return 0


def _write(out: str, name: str, plot, result) -> None:
    """``out/NAME.png`` drawn by ``plot`` and ``out/NAME.json`` of the numbers; says where they are."""
    from ..analysis import write_json

    png, js = plot(result, Path(out) / f"{name}.png"), write_json(result, Path(out) / f"{name}.json")
    print(f"plot: {png}\njson: {js}")


def _is_name(text: str) -> bool:
    """A registered name alone (no pretrained tag, not a path) means a model at initialization."""
    from ..models import is_model

    return is_model(text) and "." not in text and not Path(text).exists()


def _each_model(sources: list[str]):
    """Each source's label, the source, and its model, loaded one at a time."""
    from ..loading import load_model

    for source, label in source_labels(sources).items():
        yield label, source, load_model(source)


def _real_batch(model, args, n: int):
    """The first ``n`` test images of ``model``'s dataset (normalized as in training) and labels."""
    from ..evaluation import eval_loader, model_dataset

    ds = model_dataset(model, args.data, args.data_dir, source="the model")
    return next(iter(eval_loader(ds, n)))


def _gradients(args: argparse.Namespace) -> int:
    import torch

    from ..analysis import GradientComparison, GradientProbe, measure_gradients, model_at_init, plot_gradients
    from ..loading import load_model

    probe = GradientProbe(batch_size=args.batch_size, image_size=args.image_size, n_points=args.points)
    result = GradientComparison(norm=not args.no_norm, seed=args.seed, probe=probe)
    labels = source_labels(args.targets)
    for text in args.targets:
        if args.no_norm and not _is_name(text):
            raise ValueError(f"{text}: --no-norm applies to models at initialization; a trained model keeps its BN")
        with torch.random.fork_rng():
            torch.manual_seed(args.seed)  # twins at init share their conv weights
            if _is_name(text):
                model, batch = model_at_init(text, norm=not args.no_norm), None
            else:
                model = load_model(text)
                batch = _real_batch(model, args, args.batch_size)
            result.models.append(measure_gradients(model, labels[text], probe, args.seed, batch))
    print(f"{'model':<28} {'state':<8} {'BN':<4} {'spread':>10} {'first/last':>11} {'lag-1 corr':>11}")
    for m in result.models:
        print(f"{m.model:<28} {'trained' if m.trained else 'init':<8} {'yes' if result.norm else 'no':<4} "
              f"{m.spread:>10.3g} {m.first_to_last:>11.3g} {m.correlation.lag1:>11.3f}")
    print("spread: largest / smallest per-layer gradient norm; first/last: the first conv's over the last conv's;\n"
          "lag-1 corr: correlation of input gradients at neighbouring inputs (near 0 = shattered, Balduzzi et al. 2017)")
    _write(args.out, "gradients", plot_gradients, result)
    return 0


def _responses(args: argparse.Namespace) -> int:
    from ..analysis import layer_responses, plot_responses

    profiles = {}
    for label, _, model in _each_model(args.sources):
        images, _ = _real_batch(model, args, args.images)
        profiles[label] = layer_responses(model, images)
    for label, prof in profiles.items():
        print(f"{label}: {len(prof.std)} units, response std mean {sum(prof.std) / len(prof.std):.3f}, "
              f"max {max(prof.std):.3f}, min {min(prof.std):.3f}")
    _write(args.out, "responses", plot_responses, profiles)
    return 0


def _lesion(args: argparse.Namespace) -> int:
    from ..analysis import lesion_study, plot_lesion
    from ..evaluation import eval_loader, model_dataset, sample_subset

    reports = {}
    for label, source, model in _each_model(args.sources):
        ds = model_dataset(model, args.data, args.data_dir, source=source)
        if args.images:
            ds = sample_subset(ds, args.images)
        reports[label] = report = lesion_study(model, eval_loader(ds, 500))
        drops = [u.drop for u in report.units if u.drop is not None]
        worst = max((u for u in report.units if u.drop is not None), key=lambda u: u.drop, default=None)
        print(f"{label}: baseline {100 * report.baseline:.2f}%; removing one unit costs "
              f"{100 * sum(drops) / max(len(drops), 1):.2f} points on average"
              + (f", at most {100 * worst.drop:.2f} ({worst.unit})" if worst else "")
              + (f"; {len(report.units) - len(drops)} unit(s) cannot be removed" if len(drops) < len(report.units) else ""))
    _write(args.out, "lesion", plot_lesion, reports)
    return 0


def _gradcam(args: argparse.Namespace) -> int:
    from ..analysis import grad_cam, plot_gradcam, write_json
    from ..infer import load_images
    from ..loading import load_model
    from ..models import create_model

    untrained = _is_name(args.source)
    model = create_model(args.source) if untrained else load_model(args.source)
    if untrained:
        print(f"note: {args.source} is untrained (random weights); pass a checkpoint or pretrained tag for meaningful maps")
    images = load_images(args.images, model)
    cam = grad_cam(model, images, args.layer, args.target_class)
    names = (model.pretrained_cfg or {}).get("classes")
    out = Path(args.out)
    png = plot_gradcam(images, cam, out / "gradcam.png", names)
    rows = [{"image": str(p), "class": c, "class_name": names[c] if names else None, "logit": s}
            for p, c, s in zip(args.images, cam.classes, cam.scores)]
    js = write_json({"layer": cam.layer, "images": rows}, out / "gradcam.json")
    for r in rows:
        label = f"{r['class']} ({r['class_name']})" if names else str(r["class"])
        print(f"{r['image']}: class {label}, logit {r['logit']:.2f}")
    print(f"layer: {cam.layer}\nplot: {png}\njson: {js}")
    return 0
