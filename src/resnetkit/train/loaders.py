"""The loaders a run trains and evaluates on: in-memory datasets batched on the device, image
folders streamed through a DataLoader, both sharded across processes."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import AugmentConfig, InMemoryDataset, InMemoryLoader, load_dataset, make_streaming_loader
from .config import TrainConfig
from .distributed import DistContext


@dataclass
class LoaderSet:
    """Training, evaluation (validation split or test) and, with a validation split, test loaders;
    `meta` is what a checkpoint keeps of the dataset (classes, mean, std, channels, size)."""

    train: InMemoryLoader
    eval: InMemoryLoader
    test: InMemoryLoader | None
    meta: dict


def build_loaders(cfg: TrainConfig, ctx: DistContext, device: torch.device) -> LoaderSet:
    d = cfg.data
    if d.batch_size % ctx.world_size:
        raise ValueError(f"--batch-size {d.batch_size} is the global batch: it must divide by the {ctx.world_size} processes")
    per_rank = d.batch_size // ctx.world_size
    train = load_dataset(d.name, "train", d.data_dir, d.download, image_size=d.image_size)
    test = load_dataset(d.name, "test", d.data_dir, d.download, image_size=d.image_size)
    held_out = None
    if d.val_size:
        if not isinstance(train, InMemoryDataset):
            raise ValueError("data.val_size needs an in-memory dataset; give an image folder a val/ subfolder instead")
        train, held_out = train.split(d.val_size, seed=cfg.seed)
    evalset = held_out if held_out is not None else test
    meta = {"name": d.name, "classes": list(train.classes), "mean": list(train.mean), "std": list(train.std),
            "in_chans": train.in_chans, "image_size": list(_image_size(train, d.image_size))}

    def loader(ds, train_mode):
        batch = per_rank if train_mode else max(d.eval_batch_size // ctx.world_size, 1)
        if isinstance(ds, InMemoryDataset):
            aug = AugmentConfig(pad=d.pad, pad_mode=d.pad_mode, flip=d.flip, erasing=d.erasing) if train_mode else None
            return InMemoryLoader(ds, batch, shuffle=train_mode, drop_last=train_mode, augment=aug, seed=cfg.seed,
                                  rank=ctx.rank, world_size=ctx.world_size, device=device,
                                  channels_last=cfg.channels_last, even_shards=train_mode)
        return make_streaming_loader(ds, batch, shuffle=train_mode, num_workers=d.workers, seed=cfg.seed,
                                     rank=ctx.rank, world_size=ctx.world_size, drop_last=train_mode,
                                     even_shards=train_mode)

    return LoaderSet(loader(train, True), loader(evalset, False), loader(test, False) if held_out is not None else None, meta)


def _image_size(ds, default: int) -> tuple[int, int]:
    return tuple(ds.image_size) if isinstance(ds, InMemoryDataset) else (default, default)
