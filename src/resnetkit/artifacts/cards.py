"""What a saved model says about itself (``model.pretrained_cfg``: a shipped card, or a checkpoint's
dataset facts and training config): the data it belongs to and how its training evaluated it."""

from __future__ import annotations

from typing import Any, Protocol

from ..data import ImageDataset, load_dataset, select_classes


class CardHolder(Protocol):
    """A model that knows what it was trained on: a ResNet, or an exported file's runner."""

    num_classes: int
    pretrained_cfg: dict[str, Any]


def model_card(model: object) -> dict[str, Any]:
    return getattr(model, "pretrained_cfg", None) or {}


def trained_tta_flip(model: object) -> bool:
    """Whether the model's own training evaluated it with flip TTA (the recipe's protocol, which
    ``eval`` and ``predict`` repeat unless told otherwise)."""
    return bool(model_card(model).get("training", {}).get("config", {}).get("tta_flip", False))


def model_dataset(
    model: CardHolder,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    source: str = "the model",
) -> ImageDataset:
    """The dataset to measure ``model`` on: ``data``, or by default the one it was trained on,
    checked against its classes and channels and normalized with the statistics it was trained with."""
    trained_on = model_card(model)
    data = data or trained_on.get("name")
    if not data:
        raise ValueError(f"{source}: the model does not say what it was trained on; pass --data")
    size = trained_on.get("image_size", [224])[0]
    ds = load_dataset(data, split, data_dir, image_size=size)
    if trained_on.get("source_classes") and data == trained_on.get("name"):
        ds = select_classes(ds, trained_on["source_classes"])  # trained on some of its classes (data.classes)
    if len(ds.classes) != model.num_classes:
        raise ValueError(f"{data} has {len(ds.classes)} classes but {source} predicts {model.num_classes}")
    if ds.in_chans != trained_on.get("in_chans", ds.in_chans):
        raise ValueError(
            f"{data} images have {ds.in_chans} channels but {source} was trained on {trained_on['in_chans']}"
        )
    if trained_on.get("mean"):
        ds = ds.with_stats(trained_on["mean"], trained_on["std"])
    return ds
