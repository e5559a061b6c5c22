"""Residual networks beyond images: the time-series ResNet (Wang et al. 2017, as Fawaz et al. 2019
train it) and its plain twin on six bundled UCR/UEA datasets against MiniRocket, and the byte-level
ResNet and its plain twin on the fortunes corpus against TF-IDF + logistic regression.

Every ResNet cell is a ``fit`` run through the one engine (``train_or_reuse``: a finished run is
read back, an interrupted one resumed); every baseline cell a timed call of
``sequence_baselines``. One row per (dataset, method, seed) goes to ``results.csv`` as it comes,
and a row already there, made with the same settings, is reused: a stopped study loses nothing,
and the ResNet rows can be added later to baseline rows run earlier."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..train.config import TrainConfig, merge
from ..train.recipes import recipe
from . import sequence_baselines as baselines
from .runs import train_or_reuse

log = logging.getLogger("resnetkit.experiment")

SERIES = ("GunPoint", "ArrowHead", "ItalyPowerDemand", "OSULeaf", "BasicMotions", "JapaneseVowels")
TEXT = ("fortunes",)
DATASETS = SERIES + TEXT
METHODS = {
    "series": ("resnet_tsc", "plain_tsc", "minirocket", "minirocket-raw"),
    "text": ("resnet_text", "plain_text", "tfidf-logreg"),
}
ALL_METHODS = tuple(dict.fromkeys(m for methods in METHODS.values() for m in methods))
BASELINES = ("minirocket", "minirocket-raw", "tfidf-logreg")
# Fawaz et al.'s recipe (dl-4-tsc classifiers/resnet.py: Adam 1e-3, ReduceLROnPlateau on the
# training loss, batches of min(N/10, 64)) for the series and, for want of a published one, the texts.
RECIPE = "time-series"
QUICK_EPOCHS = 2
# The byte ResNets' epochs on fortunes (11,400 training texts of up to 1,024 bytes): an epoch took
# 36 s on this project's 2-core CPU (one thread, the other core busy), so the recipe's 300 epochs
# would be three hours a run; 10 epochs (1,880 Adam steps at lr 1e-3) are six minutes, what a
# laptop affords for ten runs.
TEXT_EPOCHS = 10
# How the ResNets' series are normalised (``data.normalize``), per dataset: UCR practice (each
# series on its own) for the univariate UCR datasets, as dl-4-tsc does; the training split's
# per-channel statistics for the two multivariate ones. dl-4-tsc feeds the MTS archive raw
# (utils/utils.py, read_dataset: z-normalisation only for the UCR archives), and per-series
# z-normalisation erases JapaneseVowels' cepstral levels (it costs MiniRocket 17.6 points there);
# the dataset's statistics are an affine map of the raw values per channel, which the first
# convolution absorbs, on a scale Adam's lr 1e-3 suits.
NORMALIZE = {"BasicMotions": "dataset", "JapaneseVowels": "dataset"}


def kind_of(dataset: str) -> str:
    return "text" if dataset in TEXT else "series"


def spec_of(dataset: str) -> str:
    return dataset if dataset in TEXT else f"ucr:{dataset}"


def normalize_of(dataset: str) -> str:
    return NORMALIZE.get(dataset, "series")


def check_datasets(names: Iterable[str]) -> list[str]:
    """The study's datasets among ``names`` (any case), in the study's order; an unknown one is an error."""
    by_lower = {d.lower(): d for d in DATASETS}
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown:
        raise ValueError(f"--datasets: unknown {', '.join(unknown)}; the study's datasets: {', '.join(DATASETS)}")
    wanted = {by_lower[n.lower()] for n in names}
    return [d for d in DATASETS if d in wanted]


def check_methods(names: Iterable[str]) -> list[str]:
    unknown = [n for n in names if n not in ALL_METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {', '.join(unknown)}; methods: {', '.join(ALL_METHODS)}")
    return [m for m in ALL_METHODS if m in set(names)]


@dataclass(frozen=True)
class Cell:
    """One run of the study: ``method`` on ``dataset`` with ``seed``."""

    dataset: str
    method: str
    seed: int

    @property
    def kind(self) -> str:
        return kind_of(self.dataset)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.dataset, self.method, self.seed)


@dataclass(frozen=True)
class SequenceBudget:
    """What every ResNet run gets (``epochs``: None is the recipe's for the series, ``TEXT_EPOCHS``
    for the texts) and whether the baselines run their small settings (``quick``: tests)."""

    epochs: int | None = None
    quick: bool = False

    def resnet_epochs(self, kind: str = "series") -> int:
        if self.epochs is not None:
            return self.epochs
        if self.quick:
            return QUICK_EPOCHS
        return TEXT_EPOCHS if kind == "text" else int(recipe(RECIPE)["epochs"])


def resnet_config(cell: Cell, out: str | os.PathLike[str], budget: SequenceBudget) -> TrainConfig:
    """The ``RECIPE`` for ``cell.method`` (a model name) on ``cell.dataset``: the archive's own split
    (fortunes: the seed's), the final weights scored on the test split (no validation split is held
    out of training sets of 36 to 270 series, as dl-4-tsc trains on them whole)."""
    values: dict[str, Any] = {
        "model": {"name": cell.method},
        "data": {"name": spec_of(cell.dataset), "normalize": normalize_of(cell.dataset)},
        "epochs": budget.resnet_epochs(cell.kind),
        "seed": cell.seed,
        "out": str(Path(out) / "runs" / cell.dataset),
        "run_name": f"{cell.method}-s{cell.seed}",
        "progress": False,
        "checkpoint_minutes": 0.0,
    }
    return TrainConfig.from_dict(merge(recipe(RECIPE), values))


def run_resnet(cfg: TrainConfig, restart: bool = False) -> dict[str, Any]:
    """One ResNet run through the engine (trained, resumed or read back): its row's measurements."""
    folder = train_or_reuse(cfg, restart)
    s = json.loads((folder / "summary.json").read_text())
    return {
        "accuracy": s["test"]["top1"],
        "seconds": round(s["seconds"], 2),
        "train_items": s["splits"]["train"],
        "test_items": s["test"]["n"],
        "classes": len(s["test"]["per_class"]),
        "run": str(folder),
    }


ResNetRunner = Callable[[Cell, Path, SequenceBudget, bool], dict[str, Any]]


def train_resnet(cell: Cell, out: Path, budget: SequenceBudget, restart: bool = False) -> dict[str, Any]:
    return run_resnet(resnet_config(cell, out, budget), restart)


def run_baseline(cell: Cell, quick: bool = False) -> dict[str, Any]:
    spec = spec_of(cell.dataset)
    if cell.method == "tfidf-logreg":
        result = baselines.tfidf_logreg(spec, cell.seed, quick=quick)
    else:
        result = baselines.minirocket(spec, cell.seed, raw=cell.method == "minirocket-raw", quick=quick)
    return {
        "accuracy": result.accuracy,
        "seconds": round(result.seconds, 2),
        "train_items": result.train_items,
        "test_items": result.test_items,
        "classes": result.classes,
        "run": "",
    }


def settings_of(cell: Cell, budget: SequenceBudget) -> str:
    """What a row was made with; a row is reused only by a run asking for the same."""
    if cell.method in BASELINES:
        return baselines.settings_of(cell.method, budget.quick)
    settings = f"recipe={RECIPE};epochs={budget.resnet_epochs(cell.kind)}"
    mode = normalize_of(cell.dataset)
    return settings if mode == "series" else f"{settings};normalize={mode}"


def cells(datasets: list[str], methods: list[str], seeds: int) -> list[Cell]:
    """Seed-major, the baselines (seconds) before the ResNets (minutes) within a seed, so every
    dataset and method has a first row early."""
    order = {m: i for i, m in enumerate((*BASELINES, *ALL_METHODS))}
    out = []
    for seed in range(seeds):
        for dataset in datasets:
            chosen = [m for m in METHODS[kind_of(dataset)] if m in methods]
            out += [Cell(dataset, m, seed) for m in sorted(chosen, key=order.__getitem__)]
    return out


def run_study(
    datasets: list[str],
    seeds: int,
    out: str | os.PathLike[str],
    budget: SequenceBudget | None = None,
    methods: list[str] | None = None,
    previous: list[dict[str, Any]] | None = None,
    on_row: Callable[[list[dict[str, Any]]], None] | None = None,
    restart: bool = False,
    resnet: ResNetRunner | None = None,
) -> list[dict[str, Any]]:
    """Every cell of ``datasets`` x ``methods`` for seeds 0..seeds-1. A row of ``previous`` (the
    results file so far) with the same settings is kept, not run again; one with other settings is
    an error unless ``restart``. ``on_row`` sees every row so far (``previous``'s other rows too)
    after each new one. ``resnet`` runs a ResNet cell (default: ``train_resnet``, the engine)."""
    budget = budget or SequenceBudget()
    resnet = resnet or train_resnet
    out = Path(out)
    done = {(r["dataset"], r["method"], int(r["seed"])): r for r in previous or []}
    rows: dict[tuple[str, str, int], dict[str, Any]] = dict(done)
    for cell in cells(datasets, methods or list(ALL_METHODS), seeds):
        settings = settings_of(cell, budget)
        old = done.get(cell.key)
        if old is not None and old["settings"] == settings:
            log.info("%s %s seed %d: row found, reusing it", *cell.key)
            continue
        if old is not None and not restart:
            raise ValueError(
                f"{out / 'results.csv'}: {cell.dataset} {cell.method} seed {cell.seed} was made with "
                f"{old['settings']}, not {settings}; use another --out or pass --restart to run it anew"
            )
        measured = (
            resnet(cell, out, budget, restart) if cell.method not in BASELINES else run_baseline(cell, budget.quick)
        )
        row = {"dataset": cell.dataset, "kind": cell.kind, "method": cell.method, "seed": cell.seed}
        rows[cell.key] = row | measured | {"settings": settings}
        log.info("%s %s seed %d: accuracy %.4f in %.1f s", *cell.key, measured["accuracy"], measured["seconds"])
        if on_row is not None:
            on_row(ordered(rows.values()))
    return ordered(rows.values())


def ordered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """By dataset (the study's order), method, seed."""

    def key(r: dict[str, Any]) -> tuple[int, int, int]:
        d = DATASETS.index(r["dataset"]) if r["dataset"] in DATASETS else len(DATASETS)
        m = ALL_METHODS.index(r["method"]) if r["method"] in ALL_METHODS else len(ALL_METHODS)
        return (d, m, int(r["seed"]))

    return sorted(rows, key=key)
