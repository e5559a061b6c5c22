"""Where pretraining helps: a grid of labels per class x method x seed on one transfer task.

Every trained cell is a ``fit`` run (the engine's run folder, checkpoints, summary), every k-NN
cell an ``embed_dataset`` pass; one row per run goes to the results. Methods: from scratch (the
same network, random init), linear probe (frozen backbone, new head), fine-tune (everything, a
smaller lr for the pretrained parts), LP-FT (Kumar et al., ICLR 2022: probe, then fine-tune) and
k-NN on the pretrained embeddings (no training at all)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..infer.embed import embed_source, knn_accuracy
from ..train.config import TrainConfig, merge
from ..train.recipes import recipe
from .runs import train_or_reuse

log = logging.getLogger("resnetkit.experiment")

METHODS = ("scratch", "linear-probe", "finetune", "lp-ft", "knn")
SOURCE_TAG = "resnet20.fashion_mnist"  # the shipped weights: the new-domain study's source


@dataclass
class TransferStudy:
    """One transfer task: ``source`` weights (a tag or run folder) to ``data`` (``classes`` of it)."""

    name: str
    model: str
    source: str
    data: str
    classes: str | None = None
    labels: tuple[int | None, ...] = (1, 5, 10, 100, None)  # None: every training image
    few_steps: int = 150  # optimizer steps of a few-label run (its images repeated to 2048 an epoch)
    all_epochs: int = 1  # epochs of an all-labels run
    all_steps: int | None = None  # or the few-label runs' budget of steps, if set: the same compute for every cell
    augment: dict[str, Any] = field(default_factory=lambda: {"pad": 2, "flip": True})
    batch_size: int = 64
    lr: float = 0.1  # from scratch, and the new head
    backbone_lr: float = 0.01  # the pretrained parts when fine-tuning
    knn_k: int = 10
    methods: tuple[str, ...] = METHODS


def pretrain_config(
    out: str | os.PathLike[str], classes: str, epochs: int, seed: int = 0, model: str = "resnet20"
) -> TrainConfig:
    """``model`` on some Fashion-MNIST classes, with the shipped weights' recipe."""
    values = merge(
        recipe("fashion-mnist", model),
        {
            "model": {"name": model},
            "data": {"classes": classes},
            "epochs": epochs,
            "seed": seed,
            "out": str(out),
            "run_name": "pretrain",
            "progress": False,
            "tta_flip": False,
        },
    )
    return TrainConfig.from_dict(values)


def cell_config(study: TransferStudy, method: str, k: int | None, seed: int, out: Path) -> TrainConfig:
    values: dict[str, Any] = {
        "model": {"name": study.model},
        "data": {
            "name": study.data,
            "classes": study.classes,
            "labels_per_class": k,
            "min_epoch_images": 2048 if k is not None else 0,
            "batch_size": study.batch_size,  # a few labels: the loader makes one batch of them all
            "erasing": 0.0,
            **study.augment,
        },
        "optim": {"name": "sgd", "lr": study.lr, "nesterov": True, "weight_decay": 5e-4, "decay_norm_and_bias": False},
        "schedule": {"name": "cosine", "warmup_epochs": 0.0},
        "epochs": study.all_epochs,
        "max_steps": study.few_steps if k is not None else study.all_steps,
        "seed": seed,
        "precision": "auto",
        "out": str(out),
        "run_name": run_name(method, k, seed),
        "progress": False,
        "log_every": 50,
        "checkpoint_minutes": 0.0,
    }
    if method != "scratch":
        values["model"]["weights"] = study.source
        values["transfer"] = {"mode": method, "head_lr": study.lr, "backbone_lr": study.backbone_lr}
    return TrainConfig.from_dict(values)


def run_name(method: str, k: int | None, seed: int) -> str:
    return f"{method}-k{'all' if k is None else k}-s{seed}"


def run_cell(
    study: TransferStudy, method: str, k: int | None, seed: int, out: Path, restart: bool = False
) -> dict[str, Any]:
    """One row: a finished run is read back from its folder, an interrupted one resumed
    (``train_or_reuse``)."""
    row = {"study": study.name, "method": method, "labels_per_class": "all" if k is None else k, "seed": seed}
    if method == "knn":
        return row | _knn_cell(study, k, seed)
    folder = train_or_reuse(cell_config(study, method, k, seed, out), restart)
    s = json.loads((folder / "summary.json").read_text())
    return row | {
        "top1": s["test"]["top1"],
        "train_images": s["splits"]["train"],
        "classes": len(s["test"]["per_class"]),
        "steps": s["steps"],
        "seconds": round(s["seconds"], 2),
        "run": str(folder),
    }


def _knn_cell(study: TransferStudy, k: int | None, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    emb = embed_source(study.source, study.data, classes=study.classes, labels_per_class=k, seed=seed)
    neighbours = min(study.knn_k, k) if k is not None else study.knn_k
    return {
        "top1": knn_accuracy(emb, neighbours),
        "train_images": len(emb.labels["train"]),
        "classes": len(emb.classes),
        "steps": 0,
        "seconds": round(time.perf_counter() - start, 2),
        "run": f"k-NN, k={neighbours}",
    }


def run_study(
    study: TransferStudy,
    seeds: int,
    out: str | os.PathLike[str],
    on_row: Callable[[list[dict]], None] | None = None,
    restart: bool = False,
) -> list[dict[str, Any]]:
    """Every cell of ``study`` for seeds 0..seeds-1, cheapest first so partial results come early;
    ``on_row`` sees the rows so far after each one (to write them as they come)."""
    out = Path(out) / study.name
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for k in sorted(study.labels, key=lambda v: float("inf") if v is None else v):
        for seed in range(seeds):
            for method in study.methods:
                rows.append(run_cell(study, method, k, seed, out, restart))
                log.info("%s %s k=%s seed %d: top-1 %.4f", study.name, method, k, seed, rows[-1]["top1"])
                if on_row is not None:
                    on_row(rows)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard deviation, min and max of top-1 per (study, labels per class, method)."""
    cells: dict[tuple, list[float]] = {}
    for r in rows:
        cells.setdefault((r["study"], r["labels_per_class"], r["method"]), []).append(r["top1"])
    out = []
    for (study, k, method), values in cells.items():
        v = np.array(values)
        std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(
            {"study": study, "labels_per_class": k, "method": method, "n": len(v), "mean": float(v.mean()), "std": std}
            | {"min": float(v.min()), "max": float(v.max())}
        )
    return out


STUDIES = {
    # New classes, same domain: the first five Fashion-MNIST classes pretrain, the other five are new.
    "new-classes": TransferStudy(
        "new-classes", "resnet20", "", "fashion-mnist", classes="5-9", few_steps=60, all_steps=60
    ),
    # Going further: the plain twin (no shortcuts, He et al. 2015) pretrained and transferred alike.
    "new-classes-plain": TransferStudy(
        "new-classes-plain", "plain20", "", "fashion-mnist", classes="5-9", few_steps=60, all_steps=60
    ),
    # New domain: clothing photographs to 8x8 handwritten digits (not mirror-symmetric: no flips).
    "new-domain": TransferStudy(
        "new-domain",
        "resnet20",
        SOURCE_TAG,
        "digits",
        labels=(1, 5, 10, None),
        augment={"pad": 1, "flip": False},
        all_epochs=10,
    ),
}
PRETRAIN_CLASSES = "0-4"


def prepare_study(
    name: str, out: str | os.PathLike[str], pretrain_epochs: int = 3, restart: bool = False
) -> TransferStudy:
    """The study, its source trained first where it has none (the new-classes studies: the
    study's network on classes 0-4)."""
    if name not in STUDIES:
        raise ValueError(f"unknown transfer study {name!r}; studies: {', '.join(STUDIES)}")
    study = STUDIES[name]
    if study.source:
        return study
    config = pretrain_config(Path(out) / name, PRETRAIN_CLASSES, pretrain_epochs, model=study.model)
    return dataclasses.replace(study, source=str(train_or_reuse(config, restart)))


def study_notes(study: TransferStudy, seeds: int) -> list[str]:
    """What a study ran, in words, for its report: the source and how each method trained."""
    budget = f"{study.few_steps} steps of batch {study.batch_size} (or all the images, if fewer)"
    full = f"{study.all_steps} steps" if study.all_steps else f"{study.all_epochs} epoch(s)"
    lines = [
        f"{study.name}: source {study.source}; data {study.data}"
        + (f" classes {study.classes}" if study.classes else "")
        + f"; seeds 0..{seeds - 1} (the seed draws the labelled images and initializes the head)",
        f"{study.name}: few-label runs {budget}, the images repeated to 2048 an epoch; all-label runs {full}; "
        f"SGD Nesterov, cosine, weight decay 5e-4, augmentation {study.augment}; scratch and the new head at "
        f"lr {study.lr}, pretrained parts at {study.backbone_lr}; LP-FT probes half the steps; "
        f"k-NN: cosine, k = min({study.knn_k}, labels per class), similarity-weighted votes",
    ]
    summary = Path(study.source) / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        lines.append(
            f"{study.name}: the source was trained here ({s['steps']} steps, {s['seconds'] / 60:.1f} min): "
            f"test top-1 {100 * s['test']['top1']:.2f}% on its {s['test']['n']} test images"
        )
    return lines
