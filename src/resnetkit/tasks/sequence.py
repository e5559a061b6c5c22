"""Sequence classification: a time series (one or more channels) or a text (its UTF-8 bytes) into
one of K classes, with a 1-D ResNet (``models``: ``resnet_tsc`` of Wang et al. 2017, ``resnet_text``
after VDCNN, or any classifier family built with ``spatial_dims=1``). The loss, metrics and what
"better" means are classification's; what differs is owned here: the data (``SequenceSplit`` from
``resnetkit.data.sequences``), batches made by length (``sequence_data``), how a file or a string
becomes an input, and which inputs check an export. No flip TTA: a reversed series is another series."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..artifacts import model_card
from ..data import DatasetError
from ..models import create_model, is_model, model_task
from .base import Batch, PredictOptions, Prepared, TensorSpec
from .classification import Classification
from .sequence_data import (
    TEXT_QUANTUM,
    BucketLoader,
    SequenceDataset,
    common_length,
    load_split,
    model_input,
    normalize_series,
)

MAX_FILE_BYTES = 256 * 2**20  # a series file or text read for prediction


@dataclass
class SequenceClassification(Classification):
    """``seed`` draws the held-out split of data that has none (texts); ``max_length`` refuses
    longer sequences (``data.max_length``); ``normalize`` is how series are normalised
    (``data.normalize``: "series", "dataset" or "none"; a saved model's record says which, and
    for "dataset" its training split's per-channel ``mean``/``std``, so every tool feeds it alike)."""

    name: ClassVar[str] = "sequence"
    class_subsets: ClassVar[bool] = False
    explainable: ClassVar[bool] = False  # serve's Grad-CAM is drawn over images; see analysis.cam1d
    fast_path: ClassVar[bool] = False  # the compiled engines fix the input size; a sequence's varies
    media_types: ClassVar[tuple[str, ...]] = ("application/json",)

    seed: int = 0
    max_length: int | None = None
    normalize: str = "series"

    def __post_init__(self) -> None:
        self.tta_flip, self.tta_shift = False, 0  # a series mirrored or moved is another series
        super().__post_init__()

    # ---- Training ---------------------------------------------------------------------------------

    def splits(self, name: str) -> tuple[str, ...]:
        return ("train", "test")

    def load_dataset(self, name: str, split: str, data_dir: str | None, download: bool, image_size: int) -> Any:
        return SequenceDataset.of(
            load_split(name, split, seed=self.seed, max_length=self.max_length, root=data_dir, normalize=self.normalize)
        )

    def dataset_meta(self, train: Any, name: str, image_size: int) -> dict[str, Any]:
        if len(train.classes) < 2:
            raise DatasetError(f"{name}: only {len(train.classes)} class; classification needs at least two")
        meta = {
            "name": name,
            "classes": list(train.classes),
            "in_chans": train.in_chans,
            "kind": train.kind,
            "max_length": self.max_length or train.max_length,
            "task": self.name,
        }
        if train.mean is not None:  # data.normalize=dataset: what predict, serve and export apply to new series
            meta |= {"mean": list(train.mean), "std": list(train.std)}
        return meta

    def units(self, meta: Mapping[str, Any]) -> str:
        return "texts" if meta.get("kind") == "text" else "series"

    def build_model(self, model_name: str, meta: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
        kind = meta.get("kind", "series")
        if is_model(model_name) and model_task(model_name) not in ("classification", self.name):
            raise DatasetError(f"--model {model_name} is a {model_task(model_name)} model; sequences need a classifier")
        options: dict[str, Any] = {}
        if is_model(model_name) and model_task(model_name) == "classification":
            options["spatial_dims"] = 1  # an image family, built in 1-D on the same skeleton
        if kind == "text":
            options["vocab_size"] = 256
        model = create_model(
            model_name, num_classes=len(meta["classes"]), in_chans=meta["in_chans"], **{**options, **dict(overrides)}
        )
        if kind == "series" and model.vocab_size is not None:
            raise DatasetError(f"--model {model_name} reads bytes (a text model); {meta['name']} holds series")
        return model

    def make_loader(
        self, dataset: Any, batch_size: int, *, train: bool, seed: int, rank: int, world_size: int
    ) -> BucketLoader:
        return BucketLoader(
            dataset, batch_size, shuffle=train, seed=seed, rank=rank, world_size=world_size, even_shards=train
        )

    # ---- A saved sequence model in use --------------------------------------------------------------

    def read(self, source: str, model: Any) -> list[Prepared]:
        """What one ``predict`` argument names: a ``.ts`` file, a ``.npz`` of series (``X``: (N, C, L),
        (C, L) or (L,)), a UCR-style ``.csv``/``.tsv`` (a label, one of the model's classes, then the
        series: a row each), another text file of numbers (one series a row, values only, one channel),
        or for a text model a text file or the text itself.
        Series are normalised as the training data was (``_normalize_of``). A sequence longer
        than the run's ``data.max_length`` (where it set one) is refused."""
        card = model_card(model)
        kind = _kind(model, card)
        limit = card.data_config.get("max_length")
        path = Path(source)
        if kind == "text":
            if path.is_file():
                _check_size(path)
                data = path.read_bytes()
            else:
                data = source.encode("utf-8")
            return [self._prepare_text(data, source, limit)]
        if not path.is_file():
            raise ValueError(f"{source}: no such file (a series model reads .npz or a text file of numbers)")
        _check_size(path)
        rows = _read_series(path, int(card.in_chans or model.in_chans), card.classes)
        names = [source] if len(rows) == 1 else [f"{source}#{i}" for i in range(len(rows))]
        return [self._prepare_series(r, n, limit, card) for r, n in zip(rows, names, strict=True)]

    def decode(self, data: bytes, name: str, model: Any, max_pixels: int) -> Prepared:
        """A JSON body (``serve``): ``{"series": [...]}`` (numbers for one channel, one list per
        channel for several) for a series model, ``{"text": "..."}`` for a text model."""
        card = model_card(model)
        kind, limit = _kind(model, card), card.data_config.get("max_length")
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{name}: not JSON ({e})") from None
        key = "text" if kind == "text" else "series"
        if not isinstance(body, dict) or key not in body:
            what = '"text": "..."' if kind == "text" else '"series": [numbers] or one list per channel'
            raise ValueError(f"{name}: a {kind} model takes a JSON object with {what}")
        if kind == "text":
            if not isinstance(body["text"], str):
                raise ValueError(f"{name}: 'text' must be a string")
            return self._prepare_text(body["text"].encode("utf-8"), name, limit)
        try:
            series = np.asarray(body["series"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: 'series' must be numbers, or lists of numbers of one length") from None
        channels = int(card.in_chans or model.in_chans)
        series = series[None] if series.ndim == 1 else series
        if series.ndim != 2 or series.shape[0] != channels or series.shape[1] < 1:
            raise ValueError(f"{name}: 'series' of shape {series.shape}; the model takes {channels} channel(s) x L")
        return self._prepare_series(series, name, limit, card)

    def input_facts(self, model: Any) -> dict[str, Any]:
        card = model_card(model)
        body = '{"text": "..."}' if _kind(model, card) == "text" else '{"series": [[...] per channel]}'
        facts = {
            "kind": _kind(model, card),
            "channels": int(card.in_chans or model.in_chans),
            "max_length": card.max_length,
            "body": body,
        }
        if facts["kind"] == "series":  # what the server does to a series before the model sees it
            facts["normalize"] = _normalize_of(card)
        return facts

    def tensor_input(self, model: Any) -> TensorSpec | None:
        """A series z-normalised per channel, ``[C, L]``; a text model takes files only (its bytes)."""
        if _kind(model, model_card(model)) == "text":
            return None
        return TensorSpec("input", "FP32", (int(model_card(model).in_chans or model.in_chans), -1))

    def from_tensor(self, x: torch.Tensor, name: str, model: Any) -> Prepared:
        limit = model_card(model).data_config.get("max_length")
        if limit is not None and x.shape[-1] > limit:
            raise ValueError(f"{name}: {x.shape[-1]} steps, longer than the model's max_length {limit}")
        return super().from_tensor(x, name, model)

    def warm_input(self, model: Any) -> torch.Tensor:
        if _kind(model, model_card(model)) == "text":
            return self._prepare_text(b"a" * TEXT_QUANTUM, "warm-up", None).input
        return torch.zeros(int(model_card(model).in_chans or model.in_chans), 64)

    def _prepare_series(self, series: np.ndarray, name: str, max_length: int | None, card: Any) -> Prepared:
        if not np.isfinite(series).all():
            raise ValueError(f"{name}: NaN or infinite values in the series (NaN is refused, not imputed)")
        if max_length is not None and series.shape[-1] > max_length:
            raise ValueError(f"{name}: {series.shape[-1]} steps, longer than the model's max_length {max_length}")
        x = torch.from_numpy(normalize_series(series.astype(np.float64), _normalize_of(card), card.mean, card.std))
        return Prepared(name, x, x, (1, int(x.shape[-1])))

    def _prepare_text(self, data: bytes, name: str, max_length: int | None) -> Prepared:
        shown = name if len(name) <= 40 else name[:37] + "..."
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{shown}: not UTF-8 text (byte {e.start}); convert it to UTF-8 first") from None
        if not data.strip():
            raise ValueError(f"{shown}: an empty text")
        if max_length is not None and len(data) > max_length:
            raise ValueError(f"{shown}: {len(data)} bytes, longer than the model's max_length {max_length}")
        values = np.frombuffer(data, dtype=np.uint8)[None, None, :]
        x = model_input(values, np.array([len(data)]), "text", _text_bucket(len(data)))[0]
        return Prepared(name, torch.from_numpy(values[0].copy()), x, (1, len(data)))

    def predict_batch(self, model: Any, inputs: list[torch.Tensor], options: PredictOptions) -> list[torch.Tensor]:
        """Logits of each input; inputs of one length share a model call."""
        out: list[torch.Tensor | None] = [None] * len(inputs)
        lengths = sorted({int(x.shape[-1]) for x in inputs})
        for length in lengths:
            idx = [i for i, x in enumerate(inputs) if int(x.shape[-1]) == length]
            logits = model(torch.stack([inputs[i] for i in idx])).float()
            for i, row in zip(idx, logits, strict=True):
                out[i] = row
        return [o for o in out if o is not None]

    def settings(self) -> dict[str, Any]:
        return {}

    def eval_dataset(
        self, card: Any, model: Any, data: str | None, data_dir: str | None, split: str, source: str = "the model"
    ) -> SequenceDataset:
        name = data or card.data
        if not name:
            raise ValueError(f"{source}: the model does not say what it was trained on; pass --data")
        ds = SequenceDataset.of(load_split(name, split, seed=self.seed, root=data_dir, **_feeding(card)))
        if len(ds.classes) != model.num_classes:
            raise ValueError(f"{name} has {len(ds.classes)} classes but {source} predicts {model.num_classes}")
        if card.in_chans is not None and ds.in_chans != card.in_chans:
            raise ValueError(f"{name} has {ds.in_chans} channels but {source} was trained on {card.in_chans}")
        if card.kind is not None and ds.kind != card.kind:
            raise ValueError(f"{name} holds {ds.kind} but {source} was trained on {card.kind}")
        return ds

    def eval_loader(self, dataset: Any, batch_size: int, device: torch.device) -> Iterable[Batch]:
        return BucketLoader(dataset, batch_size)

    def embedding_data(self, model: Any, data: str, split: str, data_dir: str | None) -> SequenceDataset:
        return self.eval_dataset(model_card(model), model, data, data_dir, split)

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        lines = [f"top-1 {100 * report['top1']:.2f}%   top-5 {100 * report['top5']:.2f}%   loss {report['loss']:.4f}"]
        return lines + super().summary(report)[1:]

    def parity_inputs(self, network: Any, count: int) -> tuple[torch.Tensor, bool]:
        """Up to ``count`` of the model's own test sequences of their most common length, and True;
        random ones of 64 steps, and False, where it records no data or the data is not here."""
        card = model_card(network)
        if card.data:
            try:
                ds = SequenceDataset.of(load_split(card.data, "test", seed=self.seed, **_feeding(card)))
            except (DatasetError, ImportError, OSError, ValueError):
                pass  # its data is not here: random inputs below
            else:
                length = common_length(ds)
                idx = np.flatnonzero(ds.bucket_lengths() == length)[:count]
                return ds.inputs(idx, length).float(), True
        gen = torch.Generator().manual_seed(0)
        if _kind(network, card) == "text":
            return torch.randint(0, 256, (min(count, 8), 1, 64), generator=gen).float(), False
        return torch.randn(min(count, 8), int(card.in_chans or network.in_chans), 64, generator=gen), False


def _kind(model: Any, card: Any) -> str:
    """What the model reads: its record's kind, else (a model fresh from create_model) text for a
    byte model and series for any other."""
    return str(card.kind or ("text" if getattr(model, "vocab_size", None) is not None else "series"))


def _normalize_of(card: Any) -> str:
    """How the model's training normalised its series (records from before the option: per series)."""
    return str(card.data_config.get("normalize") or "series")


def _feeding(card: Any) -> dict[str, Any]:
    """``load_split``'s options that make data look as the model's training data did: its length
    limit, its normalisation and (``dataset``) the training split's statistics, not the new data's."""
    mode = _normalize_of(card)
    stats = (tuple(card.mean), tuple(card.std)) if mode == "dataset" and card.mean is not None else None
    if mode == "dataset" and stats is None:
        raise ValueError("the model was trained with data.normalize='dataset' but its record has no mean/std")
    return {"max_length": card.data_config.get("max_length"), "normalize": mode, "stats": stats}


def _text_bucket(length: int) -> int:
    from .sequence_data import bucket_length

    return bucket_length(length, "text")


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} a prediction reads")


def _read_series(path: Path, channels: int, classes: tuple[str, ...] | None = None) -> list[np.ndarray]:
    """Series (C, L) from a ``.ts`` file (aeon's format, labels optional and ignored), a ``.npz``
    (``X``), a UCR-style ``.csv``/``.tsv`` (each row its label, then the series) or any other text
    file of numbers (one series a row, every field a value).

    The suffix decides whether a row starts with a label (the UCR archive's files are ``.tsv``; a
    file of values only is ``.txt``), and a ``.csv``/``.tsv``'s labels must be the model's classes:
    a values-only file named ``.csv`` would otherwise lose each series' first value without a word."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        items = importlib.import_module("resnetkit.data.sequences.delimited").read_delimited(path)
        if channels != 1:
            raise ValueError(f"{path}: UCR-style rows hold one channel; the model takes {channels}")
        if classes is not None:
            known = set(classes)
            for i, label in enumerate(items.labels):
                if label not in known:
                    shown = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
                    raise ValueError(
                        f"{items.place(i)}: first field {label[:20]!r} is not one of the model's classes ({shown}); "
                        f"a {suffix} row is UCR style (its label, then the series): a file of values only is read "
                        "as .txt"
                    )
        return [items.values[i, :, : int(n)].astype(np.float64) for i, n in enumerate(items.lengths)]
    if suffix == ".ts":
        items = importlib.import_module("resnetkit.data.sequences.ts_format").read_ts(path, labelled=False)
        if items.values.shape[1] != channels:
            raise ValueError(f"{path}: {items.values.shape[1]} channel(s); the model takes {channels}")
        return [items.values[i, :, : int(n)].astype(np.float64) for i, n in enumerate(items.lengths)]
    if suffix == ".npz":
        importlib.import_module("resnetkit.data.sequences.arrays").check_npz(path)  # declared sizes first
        try:
            with np.load(path, allow_pickle=False) as f:
                if "X" not in f.files:
                    raise ValueError(f"{path}: no array 'X' (it holds {', '.join(f.files) or 'nothing'})")
                x = np.asarray(f["X"], dtype=np.float64)
        except (OSError, ValueError) as e:
            if str(path) in str(e):
                raise
            raise ValueError(f"{path}: not a readable .npz ({e})") from None
    else:
        try:
            text = path.read_text(encoding="utf-8")
            rows = [line.replace(",", " ").replace("\t", " ").split() for line in text.splitlines() if line.strip()]
            if len({len(r) for r in rows}) > 1:
                raise ValueError(f"{path}: rows of different lengths; give one series a row, or a .npz")
            x = np.array(rows, dtype=np.float64)[:, None, :]
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file of numbers (nor a .npz)") from None
        except ValueError as e:
            if str(path) in str(e):
                raise
            raise ValueError(f"{path}: not a text file of numbers ({e})") from None
    if x.ndim == 1:
        x = x[None, None, :]
    elif x.ndim == 2:
        x = x[None] if channels > 1 or x.shape[0] == 1 else x[:, None, :]
    if x.ndim != 3 or x.shape[1] != channels or x.shape[2] < 1 or len(x) < 1:
        raise ValueError(f"{path}: series of shape {x.shape}; the model takes (N, {channels}, L)")
    return list(x)
