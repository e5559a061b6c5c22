"""The backbone at work on garment scenes: (a) residual against plain backbones of the same depth
(the degradation story on dense tasks), (b) a backbone pretrained on Fashion-MNIST classification
against the same backbone from scratch. Every cell is a ``fit`` run with its own run folder; a
finished run is read back, not trained again, so an interrupted study resumes where it stopped."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models import model_options
from ..tasks import get_task
from ..train.config import TrainConfig, merge
from ..train.recipes import recipe
from .runs import train_or_reuse

log = logging.getLogger("resnetkit.experiment")

PRETRAINED = "resnet20.fashion_mnist"  # the shipped classifier: 93% on Fashion-MNIST test
# No ImageNet-layout classifier ships: the study trains one on Fashion-MNIST first (its 28x28
# garments through the 7x7/2 stem and max-pool), once, into OUT/pretrain/, and reuses it.
PRETRAIN_RESNET18 = "pretrain:resnet18"
PRETRAIN_EPOCHS = 4


# The test metrics a row keeps: segmentation's, then detection's.
METRICS = ("miou", "pixel_acc", "map", "map50")


@dataclass(frozen=True)
class DenseCell:
    """One arm of a comparison: ``model`` (with ``weights_backbone`` or from scratch) on ``task``."""

    task: str
    model: str
    arm: str  # residual | plain | pretrained | scratch
    weights_backbone: str | None = None

    @property
    def run_name(self) -> str:
        return f"{self.model}-{'pretrained' if self.weights_backbone else 'scratch'}"


STUDIES: dict[str, tuple[DenseCell, ...]] = {
    "residual-vs-plain": (
        DenseCell("segmentation", "deeplabv3_resnet20", "residual"),
        DenseCell("segmentation", "deeplabv3_plain20", "plain"),
        DenseCell("detection", "fcos_resnet18_fpn", "residual"),
        DenseCell("detection", "fcos_plain18_fpn", "plain"),
    ),
    # The paper's Fig. 6 depth, where a plain net's training error is well above its residual twin's.
    "residual-vs-plain-deep": (
        DenseCell("segmentation", "deeplabv3_resnet56", "residual"),
        DenseCell("segmentation", "deeplabv3_plain56", "plain"),
    ),
    "pretrained-vs-scratch": (
        DenseCell("segmentation", "deeplabv3_resnet20", "scratch"),
        DenseCell("segmentation", "deeplabv3_resnet20", "pretrained", PRETRAINED),
        DenseCell("detection", "fcos_resnet18_fpn", "scratch"),
        DenseCell("detection", "fcos_resnet18_fpn", "pretrained", PRETRAIN_RESNET18),
    ),
}


@dataclass(frozen=True)
class DenseBudget:
    """What every run gets: the same scenes, steps and optimizer within a task."""

    train_scenes: int = 3000
    test_scenes: int = 500
    epochs: int = 3
    batch_size: int = 16
    head_channels: int = 64  # ASPP width (torchvision's 256 is sized for 2048-channel ResNet-50 maps)
    fpn_channels: int = 64
    pretrain_epochs: int = PRETRAIN_EPOCHS  # the ResNet-18 pretraining on Fashion-MNIST classification
    pretrain_steps: int | None = None  # or this many steps (tests)


PRETRAIN_RUN = "resnet18-fashion-mnist"


def pretrain_folder(out: str | os.PathLike[str]) -> Path:
    """Where a study under ``out`` pretrains its ResNet-18."""
    return Path(out) / "pretrain" / PRETRAIN_RUN


def pretrain_config(out: Path, budget: DenseBudget) -> TrainConfig:
    """ResNet-18 on Fashion-MNIST with the shipped weights' recipe, shortened."""
    short = {"model": {"name": "resnet18"}, "epochs": budget.pretrain_epochs, "max_steps": budget.pretrain_steps}
    values = merge(recipe("fashion-mnist"), short)
    values |= {"out": str(out), "run_name": PRETRAIN_RUN, "progress": False, "checkpoint_minutes": 0.0}
    return TrainConfig.from_dict(values)


def backbone_weights(source: str | None, out: Path, budget: DenseBudget, restart: bool = False) -> str | None:
    """A shipped tag as it is; the study's own pretraining, run once (if not already there)."""
    if source != PRETRAIN_RESNET18:
        return source
    folder = train_or_reuse(pretrain_config(out / "pretrain", budget), restart)
    return str(folder / "last.pt")  # the recipe keeps no validation split: the final weights


def cell_config(cell: DenseCell, seed: int, out: Path, budget: DenseBudget, weights: str | None = None) -> TrainConfig:
    """The task's scenes recipe (``resnetkit train --recipe scenes-segmentation``), on ``budget``,
    its backbone starting from ``weights`` (a tag or a file) for a pretrained cell."""
    # The width of whichever dense head the model has: a segmenter's head, a detector's FPN.
    widths = {"head_channels": budget.head_channels, "fpn_channels": budget.fpn_channels}
    overrides: dict[str, Any] = {k: v for k, v in widths.items() if k in model_options(cell.model)}
    if weights:
        overrides["weights_backbone"] = weights
    values: dict[str, Any] = {
        "model": {"name": cell.model, "overrides": overrides},
        "data": {
            "batch_size": budget.batch_size,
            "scenes": {"train_scenes": budget.train_scenes, "test_scenes": budget.test_scenes},
        },
        "epochs": budget.epochs,
        "seed": seed,
        "out": str(out),
        "run_name": f"{cell.run_name}-s{seed}",
        "progress": False,
        "checkpoint_minutes": 0.0,
    }
    return TrainConfig.from_dict(merge(recipe(f"scenes-{cell.task}"), values))


def run_cell(
    study: str, cell: DenseCell, seed: int, out: Path, budget: DenseBudget, restart: bool = False
) -> dict[str, Any]:
    """One row. Cells that are the same run (the scratch ResNet-20 of both studies) share a folder."""
    weights = backbone_weights(cell.weights_backbone, out, budget, restart)
    folder = train_or_reuse(cell_config(cell, seed, out / cell.task, budget, weights), restart)
    s = json.loads((folder / "summary.json").read_text())
    test = s["test"]
    row: dict[str, Any] = {"study": study, "task": cell.task, "arm": cell.arm, "model": cell.model, "seed": seed}
    row |= {m: test.get(m) for m in METRICS}  # each task's own; None in the other task's columns
    return row | {
        "steps": s["steps"],
        "seconds": round(s["seconds"], 1),
        "images_per_second": round(s["images_per_second"], 1),
        "run": str(folder),
    }


def run_studies(
    studies: list[str],
    seeds: int,
    out: str | os.PathLike[str],
    budget: DenseBudget | None = None,
    on_row: Callable[[list[dict[str, Any]]], None] | None = None,
    restart: bool = False,
) -> list[dict[str, Any]]:
    """Every cell of ``studies`` for seeds 0..seeds-1, seed-major so every arm has a first seed
    early; each run trained, reused or resumed by ``train_or_reuse`` (``restart``: runs made with
    other settings are trained anew instead of refused)."""
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown dense studies {', '.join(unknown)}; studies: {', '.join(STUDIES)}")
    budget = budget or DenseBudget()
    out = Path(out)
    rows: list[dict[str, Any]] = []
    for seed in range(seeds):
        for study in studies:
            for cell in STUDIES[study]:
                rows.append(run_cell(study, cell, seed, out, budget, restart))
                metric = get_task(cell.task).monitor
                log.info("%s %s seed %d: %s %.4f", study, cell.model, seed, metric, rows[-1][metric])
                if on_row is not None:
                    on_row(rows)
    return rows
