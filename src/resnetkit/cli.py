"""The ``resnetkit`` command: thin subcommands over the library."""
from __future__ import annotations

import argparse
import json
import sys


def _info(args: argparse.Namespace) -> int:
    from .models import list_models
    from .models.profile import profile_model

    names = list_models(args.patterns or "*")
    if not names:
        print(f"no model matches {' '.join(args.patterns)}; `resnetkit info` lists all", file=sys.stderr)
        return 2
    rows = [profile_model(n, args.image_size, args.in_chans).as_dict() for n in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<20} {'params':>12} {'GMACs':>9} {'@size':>6} {'depth':>6}")
    for r in rows:
        print(f"{r['name']:<20} {r['params']:>12,} {r['gmacs']:>9.3f} {r['image_size']:>6} {r['depth']:>6}")
    return 0


def _train_config(args: argparse.Namespace):
    from .train.config import TrainConfig, load_config_file, merge, parse_assignment
    from .train.recipes import recipe

    values: dict = {}
    if args.recipe:
        values = merge(values, recipe(args.recipe, args.model))
    if args.config:
        values = merge(values, load_config_file(args.config))
    flags = {
        ("model", "name"): args.model, ("model", "weights"): args.weights, ("data", "name"): args.data,
        ("data", "data_dir"): args.data_dir, ("data", "batch_size"): args.batch_size, ("optim", "lr"): args.lr,
        ("epochs",): args.epochs, ("max_steps",): args.max_steps, ("seed",): args.seed, ("out",): args.out,
        ("run_name",): args.name, ("precision",): args.precision, ("device",): args.device,
    }
    for path, value in flags.items():
        if value is not None:
            update: dict = value
            for part in reversed(path):
                update = {part: update}
            values = merge(values, update)
    for flag in ("compile", "deterministic"):
        if getattr(args, flag):
            values[flag] = True
    if args.no_channels_last:
        values["channels_last"] = False
    if args.no_progress:
        values["progress"] = False
    for assignment in args.set or ():
        values = merge(values, parse_assignment(assignment))
    return TrainConfig.from_dict(values)


def _train(args: argparse.Namespace) -> int:
    from .train import TrainingDiverged, TrainingInterrupted, fit

    resume = args.resume
    cfg = None if resume else _train_config(args)
    if resume and any(v is not None for v in (args.model, args.data, args.recipe, args.epochs, args.lr, args.batch_size)):
        print("resnetkit train: note: --resume continues the run with its saved config; other flags are ignored",
              file=sys.stderr)
    try:
        result = fit(cfg, resume=resume)
    except TrainingInterrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    except TrainingDiverged as e:
        print(f"resnetkit train: error: {e}", file=sys.stderr)
        return 1
    best = result.best
    print(f"done: {result.steps} steps in {result.seconds / 60:.1f} min ({result.images_per_second:.0f} img/s)")
    if best:
        print(f"best eval top-1 {100 * best['eval_top1']:.2f}% at epoch {best['epoch']}")
    if result.test:
        print(f"test top-1 {100 * result.test['top1']:.2f}% (n={result.test['n']})")
    print(f"run folder:  {result.run_dir}")
    print(f"checkpoints: {result.run_dir / 'best.pt'}, {result.run_dir / 'last.pt'}")
    print(f"plots:       {result.run_dir / 'curves.png'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_source

    report = evaluate_source(args.source, data=args.data, data_dir=args.data_dir, split=args.split,
                             batch_size=args.batch_size, out=args.out, tta_flip=args.tta_flip,
                             precision=args.precision)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "confusion"} | {"confusion": report["confusion"]}))
        return 0
    print(f"{report['source']} on {report['data']} ({report['split']}, n={report['n']})")
    print(f"top-1 {100 * report['top1']:.2f}%   top-5 {100 * report['top5']:.2f}%   loss {report['loss']:.4f}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resnetkit", description="Residual networks: models, training, analysis.")
    parser.add_argument("--version", action="version", version=f"resnetkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="table of models: parameters, GMACs, depth")
    p.add_argument("patterns", nargs="*", metavar="PATTERN", help="glob(s) over model names, e.g. 'resnet*' (default: all)")
    p.add_argument("--image-size", type=int, default=None,
                   help="input side for GMACs (default: 224 for ImageNet layouts, 32 for CIFAR ones)")
    p.add_argument("--in-chans", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_info)

    p = sub.add_parser("train", help="train a model (library: resnetkit.train.fit)",
                       description="Train a ResNet. Flags override the recipe, then the config file, then --set.")
    p.add_argument("--model", help="registered model name (default: resnet20)")
    p.add_argument("--data", help="fashion-mnist | mnist | cifar10 | cifar100 | digits | path to an image folder")
    p.add_argument("--data-dir", help="where the dataset files are (default: system dirs, then ~/.cache/resnetkit)")
    p.add_argument("--recipe", help="named recipe: paper-cifar | fashion-mnist")
    p.add_argument("--config", help="YAML or JSON config file (keys as in a run's config.yaml)")
    p.add_argument("--weights", help="start from these weights (fine-tuning): file, checkpoint or pretrained tag")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--lr", type=float)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="parent folder of run folders (default: runs)")
    p.add_argument("--name", help="run folder name (default: MODEL-DATA-TIME)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels: reproducible run to run")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. optim.weight_decay=5e-4")
    p.add_argument("--resume", metavar="RUN", help="continue a run (its folder or a checkpoint) where it stopped")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint, weights file or pretrained tag")
    p.add_argument("source", help="checkpoint (.pt), run folder, .safetensors from resnetkit, or tag (resnet20.fashion_mnist)")
    p.add_argument("--data", help="dataset (default: the one the model was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--tta-flip", action="store_true", help="average predictions on the image and its mirror")
    p.add_argument("--out", help="folder for confusion.png and eval.json")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_eval)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    import logging

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from .data import DatasetError

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, DatasetError) as e:  # user errors: one line, no traceback
        print(f"resnetkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
