"""The model record (``ModelCard``): what a saved model says about itself, typed and read in one
place. It travels with the weights in every file resnetkit writes (checkpoint, safetensors, ONNX,
``.pt2``, TorchScript) and ``load_model`` attaches it to the model as ``model.card``, so every tool
asks the record (and the task it names) instead of digging in dicts: the task, the data it was
trained on (classes, channels, input size, normalization), the run's splits, its training config
and what it measured. torchvision's ``Weights.meta`` and timm's ``pretrained_cfg`` are the models;
one dataclass, read once, is the difference."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..data import ImageDataset, load_dataset, select_classes
from ..models import WeightsError

# Sizes a record may state: a card is read from files anyone can write (ONNX metadata, safetensors
# headers), and its numbers size allocations later.
MAX_CLASSES = 100_000
# Test-time views moved further than this show mostly repeated edge, not the image the model learned.
MAX_TTA_SHIFT = 4
MAX_CHANNELS = 64
MAX_SIDE = 4_096  # a 4096-px side is 200 MB a float image: past any classifier's input
MAX_LENGTH = 1_000_000  # steps of a series or bytes of a text
KINDS = ("series", "text")


@dataclass(frozen=True)
class Splits:
    """How a run divided its data, so that every later tool measures the run's own test split and
    never its training images: image counts, and for a folder with no ``test/`` subfolder the
    seeded held-out share (``seed``, ``test_size``) and the held-out files themselves."""

    train: int = 0
    val: int = 0
    test: int = 0
    test_held_out: bool = False
    seed: int | None = None
    test_size: float | None = None
    held_out: tuple[str, ...] | None = None  # test files, relative to the dataset folder

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"train": self.train, "val": self.val, "test": self.test}
        out["test_held_out"] = self.test_held_out
        if self.test_held_out:
            out |= {"seed": self.seed, "test_size": self.test_size}
        if self.held_out is not None:
            out["held_out"] = list(self.held_out)
        return out


@dataclass(frozen=True)
class ModelCard:
    """The typed record of a model. ``data`` names the dataset (a registered name or a folder);
    ``config`` is the training config (a run's ``config.yaml``); ``results`` what its training
    measured on the test split; ``provenance`` how it was made (command, time, machine)."""

    task: str = "classification"
    data: str | None = None
    classes: tuple[str, ...] | None = None
    in_chans: int | None = None
    image_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source_classes: tuple[int, ...] | None = None  # data.classes: which of the dataset's, in this order
    labels_per_class: int | None = None
    kind: str | None = None  # a sequence model's input: "series" or "text"
    max_length: int | None = None  # the longest sequence its data held (a sequence model's)
    splits: Splits | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, Any] | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tta_flip(self) -> bool:
        """Whether its training evaluated with flip TTA (``eval`` and ``predict`` repeat it)."""
        return bool(self.config.get("tta_flip", False))

    @property
    def tta_shift(self) -> int:
        """Pixels its training's evaluation also moved each view left and right (0: none)."""
        return int(self.config.get("tta_shift", 0))

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0) or 0)

    @property
    def data_config(self) -> Mapping[str, Any]:
        return self.config.get("data") or {}

    @property
    def accuracy(self) -> float | None:
        """The headline of what it measured, where it measured top-1 (None otherwise)."""
        r = self.results or {}
        r = r.get("tta_flip" if self.tta_flip else "plain", r) if "plain" in r else r
        return float(r["top1"]) if isinstance(r.get("top1"), (int, float)) else None

    def dataset_facts(self) -> dict[str, Any]:
        """The flat facts an inference engine needs (the ``dataset`` entry of older files)."""
        facts = {
            "name": self.data,
            "classes": list(self.classes) if self.classes is not None else None,
            "mean": list(self.mean) if self.mean is not None else None,
            "std": list(self.std) if self.std is not None else None,
            "in_chans": self.in_chans,
            "image_size": list(self.image_size) if self.image_size is not None else None,
            "kind": self.kind,
            "max_length": self.max_length,
        }
        return {k: v for k, v in facts.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, **self.dataset_facts()}
        if self.source_classes is not None:
            out["source_classes"] = list(self.source_classes)
        if self.labels_per_class is not None:
            out["labels_per_class"] = self.labels_per_class
        if self.splits is not None:
            out["splits"] = self.splits.as_dict()
        out["training"] = {**self.provenance, "config": dict(self.config)}
        if self.results is not None:
            out["test"] = dict(self.results)
        return out

    def with_results(self, results: Mapping[str, Any] | None) -> ModelCard:
        return replace(self, results=results)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "the model", task: str | None = None) -> ModelCard:
        """A record from its dict: a card written by ``to_dict``, a shipped card (``weights/*.json``),
        or the ``dataset`` meta of an older checkpoint or export. Each field is checked for its type
        and range; a bad one is a ``WeightsError`` naming ``source`` and the field."""
        if not isinstance(raw, Mapping):
            raise WeightsError(f"{source}: its model record is not an object")
        check = _Checker(source)
        training = raw.get("training") or {}
        if not isinstance(training, Mapping):
            raise WeightsError(f"{source}: model record field 'training' is not an object")
        config = training.get("config") or {}
        if not isinstance(config, Mapping):
            raise WeightsError(f"{source}: model record field 'training.config' is not an object")
        shift = config.get("tta_shift", 0)
        if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= MAX_TTA_SHIFT:
            raise WeightsError(
                f"{source}: model record field 'training.config.tta_shift' must be a whole number in "
                f"0-{MAX_TTA_SHIFT}, not {shift!r}"
            )
        channels = check.integer(raw, "in_chans", 1, MAX_CHANNELS)
        mean, std = check.floats(raw, "mean"), check.floats(raw, "std", positive=True)
        for name, values in (("mean", mean), ("std", std)):
            if values is not None and channels is not None and len(values) not in (1, channels):
                raise WeightsError(
                    f"{source}: model record field '{name}' has {len(values)} values for {channels} channels"
                )
        if (mean is None) != (std is None):
            raise WeightsError(f"{source}: model record has {'mean' if std is None else 'std'} without the other")
        size = check.floats(raw, "image_size")
        if size is not None and (len(size) != 2 or not all(1 <= s <= MAX_SIDE and s == int(s) for s in size)):
            raise WeightsError(f"{source}: model record field 'image_size' must be two sides of 1-{MAX_SIDE} pixels")
        classes = raw.get("classes")
        if classes is not None and (
            not isinstance(classes, Sequence)
            or isinstance(classes, str)
            or not all(isinstance(c, str) for c in classes)
            or not 1 <= len(classes) <= MAX_CLASSES
        ):
            raise WeightsError(f"{source}: model record field 'classes' must be a list of 1-{MAX_CLASSES} names")
        kind = raw.get("task") or task or "classification"
        if not isinstance(kind, str):
            raise WeightsError(f"{source}: model record field 'task' is not a name")
        results = raw.get("test")
        seq_kind = check.text(raw, "kind")
        if seq_kind is not None and seq_kind not in KINDS:
            raise WeightsError(f"{source}: model record field 'kind' must be one of {', '.join(KINDS)}")
        provenance = {k: v for k, v in training.items() if k != "config"}
        return cls(
            task=kind,
            data=check.text(raw, "name"),
            classes=tuple(classes) if classes is not None else None,
            in_chans=channels,
            image_size=(int(size[0]), int(size[1])) if size is not None else None,
            mean=mean,
            std=std,
            source_classes=check.indices(raw, "source_classes"),
            labels_per_class=check.integer(raw, "labels_per_class", 1, 10**9),
            kind=seq_kind,
            max_length=check.integer(raw, "max_length", 1, MAX_LENGTH),
            splits=_splits(raw.get("splits"), config, source),
            config=dict(config),
            results=dict(results) if isinstance(results, Mapping) else None,
            provenance=provenance,
        )


def _splits(raw: Any, config: Mapping[str, Any], source: str) -> Splits | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{source}: model record field 'splits' is not an object")
    held = raw.get("held_out")
    if held is not None and (not isinstance(held, list) or not all(isinstance(p, str) for p in held)):
        raise WeightsError(f"{source}: model record field 'splits.held_out' must be a list of file names")
    data = config.get("data") or {}
    try:
        return Splits(
            train=int(raw.get("train", 0)),
            val=int(raw.get("val", 0)),
            test=int(raw.get("test", 0)),
            test_held_out=bool(raw.get("test_held_out", False)),
            # Older records keep the seed and share only in the training config.
            seed=int(raw.get("seed", config.get("seed", 0)) or 0),
            test_size=float(raw.get("test_size", data.get("test_size", 0.1))),
            held_out=tuple(held) if held is not None else None,
        )
    except (TypeError, ValueError):
        raise WeightsError(f"{source}: model record field 'splits' holds a value that is not a number") from None


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, what: str) -> WeightsError:
        return WeightsError(f"{self.source}: model record field '{key}' {what}")

    def text(self, raw: Mapping[str, Any], key: str) -> str | None:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "is not text")
        return value

    def integer(self, raw: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"must be a whole number in {low}-{high}, not {value!r}")
        return value

    def floats(self, raw: Mapping[str, Any], key: str, positive: bool = False) -> tuple[float, ...] | None:
        value = raw.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, Sequence)
            or isinstance(value, str)
            or not value
            or len(value) > MAX_CHANNELS
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        ):
            raise self.fail(key, f"must be a list of 1-{MAX_CHANNELS} finite numbers")
        if positive and not all(v > 0 for v in value):
            raise self.fail(key, "must be positive")
        return tuple(float(v) for v in value)

    def indices(self, raw: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise self.fail(key, "must be a list of class indices")
        return tuple(value)


class CardHolder(Protocol):
    """A model that knows what it was trained on: a ResNet, or an exported file's runner."""

    num_classes: int


def model_card(model: object) -> ModelCard:
    """The record ``model`` carries (``load_model`` attaches it); for a model built with
    ``create_model(..., pretrained=True)`` its shipped card; else an empty record of the task its
    registered name implies."""
    card = getattr(model, "card", None)
    if isinstance(card, ModelCard):
        return card
    shipped = getattr(model, "pretrained_cfg", None)
    if shipped:
        return ModelCard.from_dict(shipped, source="the shipped card", task=_registered_task(model))
    return ModelCard(task=_registered_task(model) or "classification")


def attach_card(model: Any, card: ModelCard, raw: Mapping[str, Any] | None = None) -> Any:
    """``model.card = card``; ``model.pretrained_cfg`` (timm's attribute: the dict that came with
    the weights, for code written against it) keeps ``raw``, or the card's flat data facts."""
    model.card = card
    model.pretrained_cfg = dict(raw) if raw is not None else card.dataset_facts()
    return model


def _registered_task(model: object) -> str | None:
    from ..models import is_model, model_task

    name = (getattr(model, "model_cfg", None) or {}).get("name")
    return model_task(name) if isinstance(name, str) and is_model(name) else None


def trained_tta_flip(model: object) -> bool:
    """Whether the model's own training evaluated it with flip TTA (the recipe's protocol, which
    ``eval`` and ``predict`` repeat unless told otherwise)."""
    return model_card(model).tta_flip


def model_dataset(
    model: CardHolder,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    source: str = "the model",
) -> ImageDataset:
    """The dataset to measure ``model`` on: ``data``, or by default the one it was trained on,
    checked against its classes and channels and normalized with the statistics it was trained
    with. On its own data, ``split="test"`` is the run's test split: the files it held out of a
    folder without a ``test/`` subfolder, never the images it trained on."""
    card = model_card(model)
    own = data is None or data == card.data
    data = data or card.data
    if not data:
        raise ValueError(f"{source}: the model does not say what it was trained on; pass --data")
    size = card.image_size[0] if card.image_size else int(card.data_config.get("image_size", 224))
    splits = card.splits
    held_out = own and splits is not None and splits.test_held_out
    ds = load_dataset(data, "train" if held_out else split, data_dir, image_size=size)
    if card.source_classes is not None and own:
        ds = select_classes(ds, list(card.source_classes))  # trained on some of its classes (data.classes)
    if held_out:
        assert splits is not None
        ds = _held_out_part(ds, splits, split, data, source)
    if len(ds.classes) != model.num_classes:
        raise ValueError(f"{data} has {len(ds.classes)} classes but {source} predicts {model.num_classes}")
    if card.in_chans is not None and ds.in_chans != card.in_chans:
        raise ValueError(f"{data} images have {ds.in_chans} channels but {source} was trained on {card.in_chans}")
    if card.mean is not None and card.std is not None:
        ds = ds.with_stats(list(card.mean), list(card.std))
    return ds


def _held_out_part(ds: Any, splits: Splits, split: str, data: str, source: str) -> Any:
    """The run's own share of a folder it split itself: its test files (``split="test"``), or
    the rest (``"train"``). The recorded file list decides where there is one; the seed and
    share rebuild it for records that keep none."""
    if splits.held_out is None:
        train, test = ds.split(splits.test_size or 0.1, seed=splits.seed or 0)
        return test if split == "test" else train
    root = Path(ds.root)
    held = set(splits.held_out)
    names = [Path(p).relative_to(root).as_posix() for p, _ in ds.samples]
    picked = [i for i, n in enumerate(names) if (n in held) == (split == "test")]
    if split == "test" and len(picked) != len(held):
        missing = sorted(held - set(names))[:3]
        raise ValueError(
            f"{data}: {len(held) - len(picked)} of the {len(held)} test images {source} held out are gone "
            f"(e.g. {', '.join(missing)}); evaluate on another --data"
        )
    part = ds.subset(picked)
    return part.with_train(False) if hasattr(part, "with_train") else part
