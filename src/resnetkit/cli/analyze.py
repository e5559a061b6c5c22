"""``resnetkit analyze gradients|responses|lesion``: each a call into ``resnetkit.analysis`` plus its
PNG and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from .labels import is_model_name, source_labels


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="gradient flow, layer responses and lesion studies")
    an = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    p = an.add_parser(
        "gradients",
        help="per-layer gradient norms and gradient correlation",
        description="A model NAME is measured at initialization on random inputs; a trained SOURCE "
        "(checkpoint, run folder, weights or pretrained tag) on a real batch of its data.",
    )
    p.add_argument("targets", nargs="+", metavar="MODEL_OR_SOURCE")
    p.add_argument(
        "--no-norm", action="store_true", help="replace every BatchNorm by an identity (models at init only)"
    )
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


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset (default: the one each model was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("-o", "--out", default="runs/analysis", help="output folder (default: runs/analysis)")


def _check_out(args: argparse.Namespace) -> None:
    """-o is checked before any model is loaded or measured."""
    from ..artifacts import ensure_writable

    ensure_writable(Path(args.out), "-o")


def _write(out: str, name: str, plot, result) -> None:
    """``out/NAME.png`` drawn by ``plot`` and ``out/NAME.json`` of the numbers; says where they are."""
    from ..analysis import write_json

    png, js = plot(result, Path(out) / f"{name}.png"), write_json(result, Path(out) / f"{name}.json")
    print(f"plot: {png}\njson: {js}")


def _each_model(sources: list[str]):
    """Each source's label, the source, and its model, loaded one at a time."""
    from ..artifacts import load_model

    for source, label in source_labels(sources).items():
        yield label, source, load_model(source)


def _real_batch(model, args, n: int):
    """The first ``n`` test images of ``model``'s dataset (normalized as in training) and labels."""
    from ..artifacts import model_dataset
    from ..data import eval_loader

    ds = model_dataset(model, args.data, args.data_dir, source="the model")
    return next(iter(eval_loader(ds, n)))


def _gradients(args: argparse.Namespace) -> int:
    _check_out(args)
    import torch

    from ..analysis import GradientComparison, GradientProbe, measure_gradients, model_at_init
    from ..analysis.plots import plot_gradients
    from ..artifacts import load_model

    probe = GradientProbe(batch_size=args.batch_size, image_size=args.image_size, n_points=args.points)
    result = GradientComparison(norm=not args.no_norm, seed=args.seed, probe=probe)
    labels = source_labels(args.targets)
    for text in args.targets:
        if args.no_norm and not is_model_name(text):
            raise ValueError(f"{text}: --no-norm applies to models at initialization; a trained model keeps its BN")
        with torch.random.fork_rng():
            torch.manual_seed(args.seed)  # twins at init share their conv weights
            if is_model_name(text):
                model, batch = model_at_init(text, norm=not args.no_norm), None
            else:
                model = load_model(text)
                batch = _real_batch(model, args, args.batch_size)
            result.models.append(measure_gradients(model, labels[text], probe, args.seed, batch))
    print(f"{'model':<28} {'state':<8} {'BN':<4} {'spread':>10} {'first/last':>11} {'lag-1 corr':>11}")
    for m in result.models:
        print(
            f"{m.model:<28} {'trained' if m.trained else 'init':<8} {'yes' if result.norm else 'no':<4} "
            f"{m.spread:>10.3g} {m.first_to_last:>11.3g} {m.correlation.lag1:>11.3f}"
        )
    print(
        "spread: largest / smallest per-layer gradient norm; first/last: the first conv's over the last conv's;\n"
        "lag-1 corr: correlation of input gradients at neighbouring inputs (near 0 = shattered, Balduzzi et al. 2017)"
    )
    _write(args.out, "gradients", plot_gradients, result)
    return 0


def _responses(args: argparse.Namespace) -> int:
    _check_out(args)
    from ..analysis import layer_responses
    from ..analysis.plots import plot_responses

    profiles = {}
    for label, _, model in _each_model(args.sources):
        images, _ = _real_batch(model, args, args.images)
        profiles[label] = layer_responses(model, images)
    for label, prof in profiles.items():
        print(
            f"{label}: {len(prof.std)} units, response std mean {sum(prof.std) / len(prof.std):.3f}, "
            f"max {max(prof.std):.3f}, min {min(prof.std):.3f}"
        )
    _write(args.out, "responses", plot_responses, profiles)
    return 0


def _lesion(args: argparse.Namespace) -> int:
    _check_out(args)
    from ..analysis import lesion_study
    from ..analysis.plots import plot_lesion
    from ..artifacts import model_dataset
    from ..data import eval_loader, sample_subset

    reports = {}
    for label, source, model in _each_model(args.sources):
        ds = model_dataset(model, args.data, args.data_dir, source=source)
        if args.images:
            ds = sample_subset(ds, args.images)
        reports[label] = report = lesion_study(model, eval_loader(ds, 500))
        removable = [(u.drop, u.unit) for u in report.units if u.drop is not None]
        drops = [drop for drop, _ in removable]
        worst = max(removable, default=None)
        print(
            f"{label}: baseline {100 * report.baseline:.2f}%; removing one unit costs "
            f"{100 * sum(drops) / max(len(drops), 1):.2f} points on average"
            + (f", at most {100 * worst[0]:.2f} ({worst[1]})" if worst else "")
            + (
                f"; {len(report.units) - len(drops)} unit(s) cannot be removed"
                if len(drops) < len(report.units)
                else ""
            )
        )
    _write(args.out, "lesion", plot_lesion, reports)
    return 0
