"""``resnetkit experiment degradation``: the studies that train (``resnetkit.experiments``)."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="experiments that reproduce the paper's claims")
    exp = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    p = exp.add_parser(
        "degradation",
        help="plain nets vs ResNets at several depths (He et al. 2015, Fig. 6)",
        description="Train plain-D and resnet-D for each depth D with one recipe and seed; write "
        "curves.png, results.csv and report.md. Finished runs are reused and interrupted "
        "ones resumed, so the same command picks up where it stopped.",
    )
    p.add_argument("--data", default="fashion-mnist", help="dataset name or image folder (default: fashion-mnist)")
    p.add_argument("--data-dir")
    p.add_argument("--depths", default="20,56", help="comma-separated depths (default: 20,56)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", default="paper-cifar", help="hyperparameters for every net (default: paper-cifar, §4.2)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="any training config key, e.g. optim.weight_decay=5e-4"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-o", "--out", default="runs/degradation", help="output folder (default: runs/degradation)")
    _add_restart(p)
    p.set_defaults(func=_degradation)
    add_transfer(exp)
    add_dense(exp)
    add_sequences(exp)
    # Every study reuses its finished runs and resumes an interrupted one.
    for study in exp.choices.values():
        study.set_defaults(on_interrupt="; or run the same command again: finished runs are reused")


def _add_restart(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--restart",
        action="store_true",
        help="train anew a run whose folder holds one made with other settings (default: refuse; finished "
        "runs are always reused and interrupted ones resumed)",
    )


def _degradation(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable
    from ..experiments import run_degradation, write_degradation
    from ..train.config import updates

    ensure_writable(Path(args.out), "-o")

    try:
        depths = [int(d) for d in args.depths.split(",") if d.strip()]
    except ValueError:
        raise ValueError(f"--depths {args.depths!r}: expected comma-separated integers, e.g. 20,56") from None
    overrides = updates(
        {
            ("data", "data_dir"): args.data_dir,
            ("data", "batch_size"): args.batch_size,
            ("optim", "lr"): args.lr,
            ("progress",): False if args.no_progress else None,
        },
        args.set,
    )
    result = run_degradation(
        args.data, depths, args.epochs, args.seed, args.out, args.recipe, overrides, restart=args.restart
    )
    paths = write_degradation(result, args.out, "resnetkit " + shlex.join(args.argv))
    for line in result.findings:
        print(line)
    print(f"report: {paths['report']}\ncurves: {paths['curves']}\nresults: {paths['results']}")
    return 0


def add_transfer(exp: argparse._SubParsersAction) -> None:
    p = exp.add_parser(
        "transfer",
        help="where pretraining helps: labels per class x method x seed (scratch, probe, fine-tune, LP-FT, k-NN)",
        description="Run the transfer studies (new-classes: Fashion-MNIST classes 0-4 pretrain, 5-9 are new; "
        "new-domain: the shipped resnet20.fashion_mnist to scikit-learn's digits) and write results.csv, "
        "summary.csv, accuracy.png. Finished runs are reused, so the same command picks up where it stopped.",
    )
    p.add_argument("--studies", default="new-classes,new-domain", help="comma-separated (default: both)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per cell (default: 5)")
    p.add_argument("--pretrain-epochs", type=int, default=3, help="new-classes: epochs on classes 0-4 (default: 3)")
    p.add_argument("-o", "--out", default="runs/transfer", help="output folder (default: runs/transfer)")
    _add_restart(p)
    p.set_defaults(func=_transfer)


def _transfer(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable
    from ..experiments.transfer import prepare_study, run_study, study_notes
    from ..experiments.transfer_report import write_results

    ensure_writable(Path(args.out), "-o")
    if args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: at least 1")
    start = time.perf_counter()
    rows: list[dict] = []
    notes: list[str] = []
    for name in (s.strip() for s in args.studies.split(",") if s.strip()):
        study = prepare_study(name, args.out, args.pretrain_epochs, restart=args.restart)
        notes += study_notes(study, args.seeds)
        done, known = list(rows), list(notes)

        def save(new: list[dict], done: list[dict] = done, known: list[str] = known) -> None:
            write_results(done + new, args.out, notes=known)

        rows = done + run_study(study, args.seeds, args.out, on_row=save, restart=args.restart)
    command = "resnetkit " + shlex.join(args.argv)
    paths = write_results(rows, args.out, command, time.perf_counter() - start, notes)
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def add_dense(exp: argparse._SubParsersAction) -> None:
    p = exp.add_parser(
        "dense",
        help="segmentation and detection on garment scenes: residual vs plain, pretrained vs scratch",
        description="Train DeepLabV3 and FCOS on fashion-mnist-scenes: residual against plain backbones of the "
        "same depth, and the shipped resnet20.fashion_mnist backbone against the same one from scratch; write "
        "results.csv, summary.csv, predictions.png and report.md. Finished runs are reused.",
    )
    p.add_argument(
        "--studies", default="residual-vs-plain,pretrained-vs-scratch", help="comma-separated (default: both)"
    )
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per cell (default: 2)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default: 3)")
    p.add_argument("--train-scenes", type=int, default=3000, help="training scenes (default: 3000)")
    p.add_argument("--test-scenes", type=int, default=500, help="test scenes (default: 500)")
    p.add_argument("-o", "--out", default="runs/dense", help="output folder (default: runs/dense)")
    _add_restart(p)
    p.set_defaults(func=_dense)


def _dense(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable
    from ..experiments.dense import DenseBudget, pretrain_folder, run_studies
    from ..experiments.dense_report import write_results

    ensure_writable(Path(args.out), "-o")
    for flag in ("seeds", "epochs", "train_scenes", "test_scenes"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: at least 1")
    budget = DenseBudget(train_scenes=args.train_scenes, test_scenes=args.test_scenes, epochs=args.epochs)
    command = "resnetkit " + shlex.join(args.argv)
    studies = [s.strip() for s in args.studies.split(",") if s.strip()]

    def save(rows: list[dict]) -> None:
        write_results(rows, args.out, budget, command, picture=False)

    rows = run_studies(studies, args.seeds, args.out, budget, on_row=save, restart=args.restart)
    pretrain = pretrain_folder(args.out) / "summary.json"
    done = json.loads(pretrain.read_text()) if pretrain.is_file() else None
    paths = write_results(rows, args.out, budget, command, pretrain=done)
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def add_sequences(exp: argparse._SubParsersAction) -> None:
    p = exp.add_parser(
        "sequences",
        help="1-D ResNets on bundled time series and texts against MiniRocket, TF-IDF + LR and the published ResNet",
        description="The time-series ResNet (Wang et al. 2017) and its plain twin on GunPoint, ArrowHead, "
        "ItalyPowerDemand, OSULeaf, BasicMotions and JapaneseVowels against MiniRocket and Fawaz et al.'s published "
        "accuracies; the byte ResNet and its plain twin on the fortunes corpus against TF-IDF + logistic regression. "
        "Writes results.csv (a row per run, as it comes), summary.csv, accuracy.png and report.md. Rows already in "
        "--out's results.csv, made with the same settings, are reused and finished runs read back, so the same "
        "command picks up where it stopped.",
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per dataset and method (default: 5)")
    p.add_argument("--datasets", help="comma-separated (default: the six time-series datasets and fortunes)")
    p.add_argument("--methods", help="comma-separated (default: all: resnet_tsc, plain_tsc, minirocket, ...)")
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs of every ResNet run (default: the time-series recipe's 300 for the series, 10 for the texts)",
    )
    p.add_argument("--quick", action="store_true", help="small settings (2 epochs, few kernels): a smoke test")
    p.add_argument("-o", "--out", default="runs/sequences", help="output folder (default: runs/sequences)")
    _add_restart(p)
    p.set_defaults(func=_sequences)


def _sequences(args: argparse.Namespace) -> int:
    from ..artifacts import ensure_writable
    from ..experiments.sequences import ALL_METHODS, DATASETS, SequenceBudget, check_datasets, check_methods, run_study
    from ..experiments.sequences_report import read_rows, write_results

    def names(value: str | None, default: tuple[str, ...]) -> list[str]:
        return [s.strip() for s in value.split(",") if s.strip()] if value else list(default)

    datasets = check_datasets(names(args.datasets, DATASETS))
    methods = check_methods(names(args.methods, ALL_METHODS))
    for flag in ("seeds", "epochs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} {value}: at least 1")
    out = ensure_writable(Path(args.out), "-o")
    results = out / "results.csv"
    previous = read_rows(results) if results.is_file() else []
    command = "resnetkit " + shlex.join(args.argv)

    def save(rows: list[dict]) -> None:
        write_results(rows, out, command)

    budget = SequenceBudget(epochs=args.epochs, quick=args.quick)
    rows = run_study(datasets, args.seeds, out, budget, methods, previous, on_row=save, restart=args.restart)
    paths = write_results(rows, out, command)
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0
