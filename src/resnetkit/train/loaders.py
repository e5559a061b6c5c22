"""The loaders a run trains and evaluates on: in-memory datasets batched on the device, image
folders streamed through a DataLoader, both sharded across processes.

Which split plays which part follows one rule: a validation split (the dataset's own ``val``, or
``data.val_size`` images held out of training) is evaluated every epoch and chooses ``best.pt``;
the test split is measured once, at the end (and, with ``test_curve``, after every epoch as a
learning curve that chooses nothing). An image folder with no ``val/`` or ``test/`` subfolder gets
a seeded, class-stratified test split held out of its images, never its training images back."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data import (
    AugmentConfig,
    DatasetError,
    FolderDataset,
    InMemoryDataset,
    InMemoryLoader,
    find_bad_images,
    labelled_subset,
    make_streaming_loader,
    parse_classes,
    select_classes,
    subset_record,
)
from ..data.scenes import SceneDataset
from ..tasks import Task
from .config import ConfigError, TrainConfig
from .distributed import DistContext

log = logging.getLogger("resnetkit.train")


@dataclass
class LoaderSet:
    """``eval`` is what is measured every epoch (None: nothing), ``eval_set`` says which split it
    is (``"val"``, ``"test"`` or None); ``test`` is measured at the end (None: the dataset has none).
    ``meta`` is what a checkpoint keeps of the dataset (classes, mean, std, channels, size, splits)."""

    train: Any
    eval: Any
    test: Any
    eval_set: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable images left out
    train_subset: dict[str, Any] | None = None  # with data.labels_per_class: the images drawn
    batch_size: int = (
        0  # images an optimizer step takes over all processes (data.batch_size, or fewer for a few labels)
    )


def build_loaders(cfg: TrainConfig, ctx: DistContext, device: torch.device, task: Task) -> LoaderSet:
    d = cfg.data
    if d.batch_size % ctx.world_size:
        raise ValueError(
            f"--batch-size {d.batch_size} is the global batch: it must divide by the {ctx.world_size} processes"
        )
    per_rank = d.batch_size // ctx.world_size
    splits = task.splits(d.name)
    if not task.class_subsets and (d.classes is not None or d.labels_per_class is not None):
        raise ValueError(f"--classes and --labels-per-class are for classification, not --task {task.name}")

    skipped: list[tuple[Path, str]] = []

    keep: list[int] | None = None

    def load(split: str) -> Any:
        nonlocal keep
        ds = _as_configured(task.load_dataset(d.name, split, d.data_dir, d.download, d.image_size), d)
        ds, bad = _without_bad_images(ds, d.skip_bad_images, ctx)
        skipped.extend(bad)
        if d.classes is not None:
            keep = parse_classes(d.classes, ds.classes) if keep is None else keep
            ds = select_classes(ds, keep)
        return ds

    train = load("train")
    val = load("val") if "val" in splits else None
    test = load("test") if "test" in splits else None
    held_out_test = False
    if val is None and test is None:
        train, test = train.split(d.test_size, seed=cfg.seed)
        held_out_test = True
        log.info(
            "%s has no val/ or test/ subfolder: %d of its %d images (data.test_size=%g, seed %d) are held out "
            "as the test set",
            d.name,
            len(test),
            len(train) + len(test),
            d.test_size,
            cfg.seed,
        )
    if d.val_size:
        if val is not None:
            raise ValueError(f"data.val_size={d.val_size}: {d.name} has a val/ split of its own; set it to 0")
        train, val = train.split(d.val_size, seed=cfg.seed)
    train_subset = None
    if d.labels_per_class is not None:
        # The draw depends on the seed only, not on the number of processes.
        pool = len(train)
        train = labelled_subset(train, d.labels_per_class, seed=cfg.seed)
        train_subset = {"labels_per_class": d.labels_per_class, "seed": cfg.seed, "drawn_from": pool}
        train_subset |= subset_record(train)
        log.info(
            "training on %d labelled images per class (%d of %d, seed %d)",
            d.labels_per_class,
            len(train),
            pool,
            cfg.seed,
        )
    distinct = len(train)
    if 0 < len(train) < d.min_epoch_images:
        copies = -(-d.min_epoch_images // len(train))
        log.info("%d training images, repeated %d times per epoch (data.min_epoch_images)", len(train), copies)
        train = train.subset(torch.arange(len(train)).repeat(copies))
    if d.labels_per_class is not None and len(train) < d.batch_size:  # a few labels: one batch holds them all
        per_rank = max(len(train) // ctx.world_size, 1)
        log.info("batch size %d is more than the %d images: batches of %d", d.batch_size, len(train), per_rank)
    if d.batch_fraction is not None and distinct * d.batch_fraction < d.batch_size:
        per_rank = max(int(distinct * d.batch_fraction) // ctx.world_size, 1)
        log.info("data.batch_fraction %g of %d training items: batches of %d", d.batch_fraction, distinct, per_rank)
    meta = task.dataset_meta(train, d.name, d.image_size)
    meta["splits"] = {
        "train": distinct,  # images, not counting repeats
        "val": len(val) if val is not None else 0,
        "test": len(test) if test is not None else 0,
        "test_held_out": held_out_test,
    }
    if held_out_test:
        # What eval, export and every later tool measure: this run's test files, never its training ones.
        meta["splits"] |= {"seed": cfg.seed, "test_size": d.test_size, "held_out": _files(test)}
    if d.classes is not None:
        meta["source_classes"] = keep
    if d.labels_per_class is not None:
        meta["labels_per_class"] = d.labels_per_class

    def loader(ds: Any, train_mode: bool) -> Any:
        batch = per_rank if train_mode else max(d.eval_batch_size // ctx.world_size, 1)
        own = task.make_loader(ds, batch, train=train_mode, seed=cfg.seed, rank=ctx.rank, world_size=ctx.world_size)
        if own is not None:
            return own
        if isinstance(ds, InMemoryDataset):
            aug = None
            if train_mode:
                aug = AugmentConfig(
                    pad=d.pad, pad_mode=d.pad_mode, flip=d.flip, flip_mode=d.flip_mode, erasing=d.erasing
                )
            return InMemoryLoader(
                ds,
                batch,
                shuffle=train_mode,
                drop_last=train_mode,
                augment=aug,
                seed=cfg.seed,
                rank=ctx.rank,
                world_size=ctx.world_size,
                device=device,
                channels_last=cfg.channels_last,
                even_shards=train_mode,
            )
        if train_mode and d.flip and d.flip_mode == "alternate":
            # A streamed dataset flips each sample as it reads it, knowing neither its index nor the
            # epoch. (With data.flip off, flip_mode is unused by every loader and so not refused.)
            raise ConfigError(
                f"data.flip_mode=alternate: needs a dataset held in memory; {d.name} is read as it trains"
                " (use data.flip_mode=random)"
            )
        return make_streaming_loader(
            ds,
            batch,
            shuffle=train_mode,
            num_workers=0 if getattr(ds, "in_memory", False) else d.workers,
            seed=cfg.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            drop_last=train_mode,
            even_shards=train_mode,
            collate_fn=task.collate(ds),
        )

    test_loader = loader(test, False) if test is not None else None
    if val is not None:
        return LoaderSet(
            loader(train, True),
            loader(val, False),
            test_loader,
            "val",
            meta,
            skipped,
            train_subset,
            per_rank * ctx.world_size,
        )
    if cfg.test_curve:
        return LoaderSet(
            loader(train, True),
            test_loader,
            test_loader,
            "test",
            meta,
            skipped,
            train_subset,
            per_rank * ctx.world_size,
        )
    return LoaderSet(
        loader(train, True), None, test_loader, None, meta, skipped, train_subset, per_rank * ctx.world_size
    )


def _as_configured(ds: Any, d: Any) -> Any:
    """``ds`` with the channels and normalization the config asks for (data.channels, data.mean/std)."""
    if d.channels is not None and d.channels != ds.in_chans:
        if not isinstance(ds, (InMemoryDataset, FolderDataset, SceneDataset)):
            raise DatasetError(f"data.channels={d.channels}: {d.name} images cannot be converted")
        ds = ds.with_channels(d.channels)
    if d.mean is not None:
        if not hasattr(ds, "with_stats"):
            raise DatasetError(f"data.mean/std: {d.name} is not images (series take data.normalize)")
        if len(d.mean) != ds.in_chans:
            raise DatasetError(
                f"data.mean/std have {len(d.mean)} values for {ds.in_chans}-channel images of {d.name}"
                " (set data.channels, or give one value per channel)"
            )
        ds = ds.with_stats(d.mean, d.std)
    return ds


def _files(ds: Any) -> list[str] | None:
    """The files of an image folder's part, relative to the folder (None for in-memory data)."""
    if not isinstance(ds, FolderDataset):
        return None
    return [Path(path).relative_to(ds.root).as_posix() for path, _ in ds.samples]


def _without_bad_images(ds: Any, skip: bool, ctx: DistContext) -> tuple[Any, list[tuple[Path, str]]]:
    """An image folder scanned before training: one unreadable file would otherwise stop the run
    half-way through an epoch. Refused with the list, or left out with ``skip``. Rank 0 scans and
    every rank takes its list, so all refuse or leave out the same files."""
    if not isinstance(ds, FolderDataset):
        return ds, []
    found = find_bad_images([path for path, _ in ds.samples]) if ctx.is_main else None
    bad: list[tuple[Path, str]] = ctx.broadcast(found)
    if not bad:
        return ds, []
    listing = "; ".join(f"{path} ({reason})" for path, reason in bad[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    if not skip:
        raise DatasetError(
            f"{len(bad)} of {len(ds)} images in {ds.root} cannot be read: {listing}{more}. "
            "Fix or remove them, or pass --skip-bad-images to train without them"
        )
    if ctx.is_main:
        log.warning("leaving out %d unreadable image(s) of %s: %s%s", len(bad), ds.root, listing, more)
    return ds.without([path for path, _ in bad]), bad
