"""``resnetkit train``: the command over ``resnetkit.train.fit``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .options import add_max_image_pixels


def add_commands(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (library: resnetkit.train.fit)",
        description="Train a ResNet. Flags override the recipe, then the config file, then --set.",
    )
    p.add_argument(
        "--model", help="registered model name (default: resnet20; `resnetkit info --task detection` lists dense ones)"
    )
    p.add_argument("--weights", help="start from these weights: file, checkpoint or pretrained tag (see finetune)")
    add_training_flags(p)
    p.set_defaults(func=_train)


def add_training_flags(p: argparse.ArgumentParser) -> None:
    """The flags ``train`` and ``finetune`` share."""
    p.add_argument(
        "--task",
        choices=["classification", "segmentation", "detection", "sequence"],
        help="what the model learns (default: what --model implies: `resnetkit info --task detection` lists "
        "detectors); dense tasks train on --data fashion-mnist-scenes or a folder of masks or COCO boxes; "
        "sequence trains resnet_tsc, resnet_text or any classifier family in 1-D on series or texts",
    )
    p.add_argument(
        "--data",
        help="fashion-mnist | mnist | cifar10 | cifar100 | digits | path to an image folder | fashion-mnist-scenes"
        " | sequences: ucr:NAME (e.g. ucr:GunPoint), fortunes, .ts/.npz/CSV files, text folders",
    )
    p.add_argument(
        "--max-length", type=int, metavar="STEPS", help="sequences: a series or text longer than this is an error"
    )
    p.add_argument("--data-dir", help="where the dataset files are (default: system dirs, then ~/.cache/resnetkit)")
    p.add_argument("--classes", help='train on these classes only, relabelled in this order: "0-4", "5,7", "Bag,Shirt"')
    p.add_argument(
        "--labels-per-class",
        type=int,
        metavar="K",
        help="train on K images of each class, a seeded draw recorded in the run's train_subset.json",
    )
    p.add_argument(
        "--recipe",
        help="named recipe: paper-cifar | fashion-mnist | scenes-segmentation | scenes-detection | time-series",
    )
    p.add_argument("--config", help="YAML or JSON config file (keys as in a run's config.yaml)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--lr", type=float)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument(
        "--grad-accum-steps",
        type=int,
        metavar="N",
        help="accumulate the gradients of N micro-batches of --batch-size / N per optimizer step: the whole "
        "batch's optimization (BatchNorm aside) in a micro-batch's memory; step counts are optimizer steps",
    )
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--grad-checkpointing",
        action="store_true",
        help="activation checkpointing: keep only each segment of residual units' input and recompute the rest "
        "in the backward (a fraction of the activation memory for about 1.3x the step time)",
    )
    p.add_argument(
        "--no-memory-guard",
        action="store_true",
        help="skip the check, before the first step, that the step fits in the memory available "
        "(the limit it reads can be set with the environment variable RESNETKIT_MEMORY_LIMIT, e.g. 8G)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="also save last.pt every STEPS steps (it is saved every epoch and every 5 minutes anyway)",
    )
    p.add_argument("--out", help="parent folder of run folders (default: runs)")
    p.add_argument("--name", help="run folder name (default: MODEL-DATA-TIME)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels: reproducible run to run")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="image folders: train without the files a scan before training finds unreadable",
    )
    add_max_image_pixels(p)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. optim.weight_decay=5e-4")
    p.add_argument("--resume", metavar="RUN", help="continue a run (its folder or a checkpoint) where it stopped")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes on this machine (DDP via torchrun's elastic agent; gloo on CPU, NCCL on CUDA)",
    )
    p.add_argument("--max-restarts", type=int, default=0, help="with --nproc: restarts after a worker dies")
    p.add_argument("--sync-bn", action="store_true", help="distributed: BatchNorm statistics over the global batch")
    p.add_argument(
        "--scale-lr", action="store_true", help="lr *= global batch / 256 (Goyal et al. 2017); pair it with warmup"
    )
    p.set_defaults(func=_train)


def _train_config(args: argparse.Namespace, extra: dict | None = None, defaults: dict | None = None):
    """The run's config: ``defaults`` (what the source weights' record implies), then the recipe,
    then the config file, then ``extra`` (finetune's), then flags and --set."""
    from ..train.config import TrainConfig, load_config_file, merge, updates
    from ..train.recipes import recipe

    values: dict = dict(defaults or {})
    if args.recipe:
        values = merge(values, recipe(args.recipe, args.model))
    if args.config:
        values = merge(values, load_config_file(args.config))
    values = merge(values, extra or {})
    flags = updates(
        {
            ("task",): args.task,
            ("model", "name"): args.model,
            ("model", "weights"): args.weights,
            ("data", "name"): args.data,
            ("data", "data_dir"): args.data_dir,
            ("data", "classes"): args.classes,
            ("data", "labels_per_class"): args.labels_per_class,
            ("data", "max_length"): args.max_length,
            ("data", "batch_size"): args.batch_size,
            ("optim", "lr"): args.lr,
            ("epochs",): args.epochs,
            ("max_steps",): args.max_steps,
            ("grad_accum_steps",): args.grad_accum_steps,
            ("checkpoint_every",): args.checkpoint_every,
            ("seed",): args.seed,
            ("out",): args.out,
            ("run_name",): args.name,
            ("precision",): args.precision,
            ("device",): args.device,
            # switches: only a flag that is given overrides the recipe and config file
            ("compile",): args.compile or None,
            ("grad_checkpointing",): args.grad_checkpointing or None,
            ("memory_guard",): False if args.no_memory_guard else None,
            ("deterministic",): args.deterministic or None,
            ("sync_bn",): args.sync_bn or None,
            ("optim", "scale_lr"): args.scale_lr or None,
            ("channels_last",): False if args.no_channels_last else None,
            ("progress",): False if args.no_progress else None,
            ("data", "skip_bad_images"): args.skip_bad_images or None,
        },
        args.set,
    )
    values = merge(values, flags)
    source = (defaults or {}).get("data", {})
    data = values.get("data", {})
    if "mean" in source and data.get("channels") != source.get("channels") and data.get("mean") == source["mean"]:
        # The source's statistics are of its channels: images read otherwise keep their own.
        values["data"] = {k: v for k, v in data.items() if k not in ("mean", "std")}
    return TrainConfig.from_dict(values)


def _source_defaults(source: str | None) -> dict:
    """The data config the source weights' record implies (input size, channels, normalization),
    said in one line: a model is fed as it was trained unless the user says otherwise."""
    from ..artifacts import data_defaults, source_card

    card = source_card(source) if source else None
    taken = data_defaults(card) if card is not None else {}
    if taken:
        said = ", ".join(f"data.{k}={v}" for k, v in taken.items())
        print(f"resnetkit: from {source}'s record: {said} (set any of them to choose another)", file=sys.stderr)
    return {"data": taken} if taken else {}


# The flags that set the config: beside --resume, the saved config decides and they do nothing.
_CONFIG_FLAGS = (
    "task", "model", "weights", "data", "data_dir", "classes", "labels_per_class", "recipe", "config", "epochs",
    "batch_size", "lr", "max_steps", "seed", "checkpoint_every", "precision", "grad_accum_steps", "set",
    "grad_checkpointing", "max_length",
)  # fmt: skip


def _check_resume_length(args: argparse.Namespace) -> set[str]:
    """``--max-steps`` or ``--epochs`` beside ``--resume`` must be the run's own (those that are
    come back): its learning-rate schedule is laid over that length, so another is refused, not
    ignored. The run's ``config.yaml`` says; without one, ``fit`` reports what is missing."""
    from ..train.config import load_config_file

    given = {k: getattr(args, k) for k in ("max_steps", "epochs") if getattr(args, k, None) is not None}
    folder = Path(args.resume)
    folder = folder if folder.is_dir() else folder.parent
    if not given or not (folder / "config.yaml").is_file():
        return set()
    saved = load_config_file(folder / "config.yaml")
    for key, value in given.items():
        if saved.get(key) != value:
            flag = f"--{key.replace('_', '-')}"
            raise ValueError(
                f"{flag} {value}: {folder / 'config.yaml'} has {key}: {saved.get(key)}, and --resume continues the run "
                f"as it was set (its learning-rate schedule spans that length): drop {flag}, or train longer in a new "
                f"run from its weights: resnetkit train --config {folder / 'config.yaml'} --weights {folder} "
                f"{flag} {value} --name NEW"
            )
    return set(given)


def _train(args: argparse.Namespace, extra: dict | None = None) -> int:
    import os

    from ..tasks import get_task
    from ..train import TrainingDiverged, fit
    from ..train.memory_guard import MemoryGuardError

    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from ..artifacts import default_run_name
        from ..train.launch import launch_local, strip_flags

        cfg = _train_config(args, extra, _source_defaults(args.weights))  # fail here, once, not in every worker
        if args.resume:
            _check_resume_length(args)
        argv = strip_flags(args.argv, ("--nproc", "--max-restarts"))
        if cfg.run_name is None and not args.resume:  # one folder for every worker and restart
            argv += ["--name", default_run_name(cfg.model.name, cfg.data.name)]
        return launch_local(args.nproc, argv, args.max_restarts)
    resume = args.resume
    cfg = None if resume else _train_config(args, extra, _source_defaults(args.weights))
    agreed = _check_resume_length(args) if resume else set()
    given = [k for k in _CONFIG_FLAGS if getattr(args, k, None) not in (None, False) and k not in agreed]
    ignored = [f"--{k.replace('_', '-')}" for k in given]
    if resume and ignored:
        # The saved config is the run: a flag given beside --resume (even --max-steps) is not applied.
        print(
            f"resnetkit train: note: --resume continues the run with its saved config; {', '.join(ignored)} "
            "ignored (start a new run to change them)",
            file=sys.stderr,
        )
    try:
        result = fit(cfg, resume=resume, argv=["resnetkit", *args.argv])
    except MemoryGuardError:
        if os.environ.get("RANK", "0") != "0":
            # Every rank holds the same refusal (gathered); global rank 0 prints it. The others
            # exit a moment later, so the launcher does not stop rank 0 before it has printed.
            time.sleep(1.0)
            return 2
        raise
    except TrainingDiverged as e:
        print(f"resnetkit train: error: {e}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":  # under torchrun, global rank 0 reports
        return 0
    best = result.best
    task = get_task(result.task)
    rate = f"{result.images_per_second:.0f} {result.units}/s"
    print(f"done: {result.steps} steps in {result.seconds / 60:.1f} min ({rate})")
    metric, label = task.monitor, task.labels.get(task.monitor, task.monitor)  # the task's headline
    if best and f"eval_{metric}" in best:
        print(f"best validation {label} {100 * best[f'eval_{metric}']:.2f}% at epoch {best['epoch']} (best.pt)")
    if result.test and metric in result.test:
        print(f"test {label} {100 * result.test[metric]:.2f}% (n={result.test['n']}, weights of {result.test_weights})")
    print(f"run folder:  {result.run_dir}")
    kept = [name for name in ("best.pt", "last.pt") if (result.run_dir / name).is_file()]
    print(f"checkpoints: {', '.join(str(result.run_dir / name) for name in kept)}")
    print(f"plots:       {result.run_dir / 'curves.png'}")
    return 0
