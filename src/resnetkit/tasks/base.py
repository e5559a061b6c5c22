"""The contract between a task and every tool. The engine is one loop that knows no labels, heads
or metrics: a task says how a batch is made, which model it needs, what the loss is, which
statistics a step adds up and how evaluation reduces across processes, and what "better" means
when a checkpoint is chosen (as detectron2's trainer makes no assumption about what it trains).

Above the engine the same object says how a saved model is used, so ``predict``, ``eval``,
``export`` and ``serve`` ask the task its record names instead of comparing names: how an image
becomes an input, how a batch is predicted (LitServe's decode / predict / encode split), how a
prediction is written (JSON, a line of text, a picture), how an evaluation is summarised and
which metric is its headline, and which inputs check an export."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from ..models import Parts, ResNetBase, trunk_parts

Batch = tuple[Any, Any]
Picture = Any  # a PIL image
Reduce = Callable[[torch.Tensor], torch.Tensor]  # sums a tensor over processes (identity in one)
Autocast = Callable[[], AbstractContextManager[Any]]


class Evaluation(Protocol):
    """What a task's evaluation returns: scalars the engine logs (``loss`` among them) and a
    JSON-able report with whatever else the task measured (per-class accuracy, confusion...)."""

    def scalars(self) -> dict[str, float]: ...

    def as_dict(self, names: list[str] | None = None) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """What a caller may ask of a prediction: classification's ``top_k`` and TTA (flips and
    shifts; None: as the model's training evaluated), detection's ``min_score``, and whether a segmentation
    answer carries its mask (a base64 PNG of class indices, as ``serve`` sends it)."""

    top_k: int = 5
    tta_flip: bool | None = None
    tta_shift: int | None = None
    min_score: float = 0.3
    mask: bool = False


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A named tensor of the Open Inference Protocol (KServe / Triton "v2"), per item: ``shape``
    leaves the batch dimension out and holds -1 where a size varies. Items of unequal shapes
    answered as one batch tensor are padded with ``fill``."""

    name: str
    datatype: str  # the protocol's: "FP32", "INT32", "INT64", "BYTES"
    shape: tuple[int, ...]
    fill: float | int | bytes = 0


@dataclasses.dataclass
class Prepared:
    """One decoded image made ready for a model: ``input`` for the model, ``image`` (uint8) what
    a picture of the prediction is drawn on, ``size`` the image's own (height, width), at which a
    dense prediction is answered."""

    name: str
    image: torch.Tensor
    input: torch.Tensor
    size: tuple[int, int]


@dataclasses.dataclass
class Task(ABC):
    """One kind of problem the engine can train. Subclasses are dataclasses whose fields are the
    task's options; ``from_options`` picks the ones a task has from the training config."""

    name: ClassVar[str]
    # Statistics a training step adds up, per sample; the first is always "loss".
    train_metrics: ClassVar[tuple[str, ...]]
    # The evaluation scalar that chooses best.pt, and its direction.
    monitor: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    # Whether a run may keep some classes (data.classes) or K labels of each (data.labels_per_class).
    class_subsets: ClassVar[bool] = False

    @classmethod
    def from_options(cls, **options: Any) -> Task:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in known})

    def with_options(self, **options: Any) -> Task:
        """A copy with those of ``options`` this task has (None: left as it is)."""
        known = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v for k, v in options.items() if k in known and v is not None})

    @abstractmethod
    def splits(self, name: str) -> tuple[str, ...]:
        """The splits dataset ``name`` has (``train`` always; ``val`` and ``test`` where they exist)."""

    @abstractmethod
    def load_dataset(self, name: str, split: str, data_dir: str | None, download: bool, image_size: int) -> Any:
        """A split (``"train"``, ``"val"`` or ``"test"``) of a dataset this task trains on."""

    @abstractmethod
    def dataset_meta(self, train: Any, name: str, image_size: int) -> dict[str, Any]:
        """What a checkpoint keeps about the data so the model can be used without it."""

    def units(self, meta: Mapping[str, Any]) -> str:
        """What the items of a dataset with this ``dataset_meta`` are called in the console
        ("20 steps of 5 images", "12 images/s")."""
        return "images"

    @abstractmethod
    def build_model(self, model_name: str, meta: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
        """A fresh model with the head this task and dataset need."""

    def transfer_parts(self, model: nn.Module) -> Parts:
        """What fine-tuning freezes and gives learning rates (``train/transfer.py``), from the
        input up: ``stem``, ``layer1`` .. ``layerN``, ``head``. A classifier's head is its last
        layer, the one a new class list replaces."""
        if not isinstance(model, ResNetBase):
            raise ValueError(
                f"transfer settings need a resnetkit model (stem, stages, head); a {type(model).__name__} has none"
            )
        return [*trunk_parts(model), ("head", [model.get_classifier()])]

    def make_batch(self, batch: Batch, device: torch.device) -> Batch:
        """(inputs, targets) on ``device``."""
        x, y = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def make_loader(
        self, dataset: Any, batch_size: int, *, train: bool, seed: int, rank: int, world_size: int
    ) -> Any | None:
        """A loader of this task's own for ``dataset`` (None: the engine's image loaders). It has
        ``len`` (batches per epoch, equal on every rank when ``train``), ``set_epoch`` and yields
        ``(inputs, targets)``, replaying an epoch's batches exactly for a resumed run."""
        return None

    def collate(self, dataset: Any) -> Callable[[list[Any]], Batch] | None:
        """How a streamed dataset's samples become a batch (None: the loader's default, which
        normalizes uint8 images and stacks labels)."""
        return None

    def forward(self, model: nn.Module, x: Any, targets: Any) -> Any:
        """The training forward pass (a detector takes the targets and returns its losses)."""
        return model(x)

    def batch_size(self, targets: Any) -> int:
        return len(targets)

    def check_batch(self, inputs: Any, targets: Any) -> str | None:
        """What in a batch makes a loss non-finite whatever the weights (None: nothing): NaN or
        infinite inputs or targets. The NaN guard asks, to tell bad data from a divergence."""
        for what, value in (("inputs", inputs), ("targets", targets)):
            bad = sum(int((~t.isfinite()).sum()) for t in _tensors(value) if t.is_floating_point())
            if bad:
                return f"the {what} hold {bad} NaN or infinite value(s)"
        return None

    @abstractmethod
    def loss(self, outputs: Any, targets: Any) -> torch.Tensor:
        """The mean loss of a batch (computed in float32)."""

    @abstractmethod
    def step_stats(self, loss: torch.Tensor, outputs: Any, targets: Any) -> torch.Tensor:
        """Sums over the batch of each of ``train_metrics`` (float64, on the outputs' device)."""

    @abstractmethod
    def evaluate(
        self,
        model: nn.Module,
        loader: Iterable[Batch],
        device: torch.device,
        autocast: Autocast | None = None,
        reduce: Reduce | None = None,
    ) -> Evaluation:
        """Measure ``model`` on every batch of ``loader``; ``reduce`` sums over processes."""

    def is_better(self, scalars: Mapping[str, float], best: Mapping[str, float] | None) -> bool:
        if best is None:
            return True
        new, old = scalars[self.monitor], best[self.monitor]
        return new > old if self.higher_is_better else new < old

    # ---- Above the engine: a saved model in use -------------------------------------------------
    # Optional for a task that only trains; every tool that uses a saved model calls these.

    # How the evaluation's scalars are named for people, the headline (``monitor``) first.
    labels: ClassVar[dict[str, str]] = {}
    # Whether ``serve`` can explain a prediction (Grad-CAM needs a class score to follow).
    explainable: ClassVar[bool] = False
    # The media types of a body ``decode`` reads (``serve``; multipart parts are always read).
    media_types: ClassVar[tuple[str, ...]] = ("image/", "application/octet-stream")
    # Whether predict and eval may run the fast path (compiled for one input size).
    fast_path: ClassVar[bool] = True

    def headline(self, scalars: Mapping[str, Any]) -> str:
        """The headline metric as people read it, e.g. ``top-1 94.70%``."""
        return f"{self.labels.get(self.monitor, self.monitor)} {100 * float(scalars[self.monitor]):.2f}%"

    def reading(self, model: Any) -> tuple[str, int | None]:
        """How an image file is read for ``model``: the Pillow mode, and the size a JPEG may be
        decoded down to (None: its own)."""
        return ("L" if int(model.in_chans) == 1 else "RGB"), None

    def read(self, source: str, model: Any) -> list[Prepared]:
        """The inputs one ``predict`` argument names: by default an image file, read as
        ``reading`` says and made ready by ``prepare``."""
        from ..data import read_image

        mode, draft = self.reading(model)
        return [self.prepare(read_image(source, mode, draft), source, model)]

    def decode(self, data: bytes, name: str, model: Any, max_pixels: int) -> Prepared:
        """One uploaded body (``serve``): by default an image, read as ``predict`` reads files (every
        Pillow mode, first frame, EXIF orientation), at most ``max_pixels``, then ``prepare``d.
        Bad input raises ``DatasetError`` or ``ValueError`` with a message naming the problem."""
        from ..data import decode_image

        mode, draft = self.reading(model)
        return self.prepare(decode_image(data, name, mode, draft, max_pixels), name, model)

    def input_facts(self, model: Any) -> dict[str, Any]:
        """What the model takes, for ``serve``'s ``/v1/model``: channels, size and normalization."""
        from .inputs import input_spec

        spec = input_spec(model)
        return {
            "channels": spec.in_chans,
            "size": list(spec.image_size),
            "mean": list(spec.mean),
            "std": list(spec.std),
        }

    def warm_input(self, model: Any) -> torch.Tensor:
        """An input of the kind the model will meet, to warm it up (a blank image of its size)."""
        from .inputs import input_spec

        spec = input_spec(model)
        return self.prepare(torch.zeros(spec.in_chans, *spec.image_size, dtype=torch.uint8), "warm-up", model).input

    def prepare(self, image: torch.Tensor, name: str, model: Any) -> Prepared:
        """A decoded uint8 image (C, H, W) made into ``model``'s input, as its record says."""
        raise NotImplementedError(f"{self.name}: no prediction of saved models (a task for training only)")

    def predict_batch(self, model: Any, inputs: list[torch.Tensor], options: PredictOptions) -> list[Any]:
        """One model call (or as few as the inputs' sizes allow) for prepared inputs: one raw
        output per input, in the model's frame. Where the speed is; nothing here meets raw bytes."""
        raise NotImplementedError(f"{self.name}: no prediction of saved models")

    def encode(self, output: Any, prepared: Prepared, classes: list[str] | None, options: PredictOptions) -> dict:
        """One prediction as JSON, in the image's own pixels (what ``predict --json`` prints and
        ``serve`` answers, less the image's name)."""
        raise NotImplementedError(f"{self.name}: no prediction of saved models")

    def tensor_input(self, model: Any) -> TensorSpec | None:
        """The preprocessed float input a client may send instead of files (``serve``'s v2
        ``input``): by default the model's normalized image, ``[C, H, W]``; None: files only."""
        from .inputs import input_spec

        spec = input_spec(model)
        return TensorSpec("input", "FP32", (spec.in_chans, *spec.image_size))

    def from_tensor(self, x: torch.Tensor, name: str, model: Any) -> Prepared:
        """One item of ``tensor_input`` (already in the model's frame) made ready, as ``prepare``
        makes a decoded image; a shape the model cannot take, or a non-finite value, raises
        ``ValueError`` naming it."""
        spec = self.tensor_input(model)
        if spec is None:
            raise ValueError(f"a {self.name} model of this kind takes no tensor input; send files")
        if x.dim() != len(spec.shape) or any(w not in (-1, int(n)) for w, n in zip(spec.shape, x.shape, strict=True)):
            shown = ", ".join("-1" if w == -1 else str(w) for w in spec.shape)
            raise ValueError(f"an item of shape {list(x.shape)}; the model takes [{shown}]")
        if 0 in x.shape:
            raise ValueError(f"an item of shape {list(x.shape)}: empty")
        if not bool(x.isfinite().all()):
            raise ValueError("NaN or infinite values in the input tensor")
        size = (int(x.shape[-2]), int(x.shape[-1])) if x.dim() >= 3 else (1, int(x.shape[-1]))
        return Prepared(name, x, x, size)

    def tensor_outputs(self, model: Any) -> list[TensorSpec]:
        """The named outputs of a prediction (``serve``'s v2 metadata)."""
        raise NotImplementedError(f"{self.name}: no tensor outputs")

    def tensor_encode(
        self, output: Any, prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        """One prediction as numpy arrays, one per ``tensor_outputs`` name, in the item's own frame
        (what ``encode`` answers as JSON, as tensors)."""
        raise NotImplementedError(f"{self.name}: no tensor outputs")

    def describe(self, record: Mapping[str, Any]) -> str:
        """An encoded prediction as one line of text."""
        raise NotImplementedError(f"{self.name}: no prediction of saved models")

    def draw(self, output: Any, prepared: Prepared, classes: list[str] | None, options: PredictOptions) -> Picture:
        """The prediction drawn over the image (None: nothing to draw, as for a class label)."""
        return None

    def settings(self) -> dict[str, Any]:
        """The options that change what an evaluation measures, for its report (e.g. flip TTA)."""
        return {}

    def eval_dataset(
        self, card: Any, model: Any, data: str | None, data_dir: str | None, split: str, source: str = "the model"
    ) -> Any:
        """The data a saved model is measured on: by default its own split of what it trained on."""
        raise NotImplementedError(f"{self.name}: no evaluation of saved models")

    def embedding_data(self, model: Any, data: str, split: str, data_dir: str | None) -> Any:
        """A split of ``data`` to embed with ``model``'s backbone (``resnetkit embed``)."""
        raise NotImplementedError(f"{self.name}: no embedding of datasets")

    def eval_loader(self, dataset: Any, batch_size: int, device: torch.device) -> Iterable[Batch]:
        from ..data import make_streaming_loader

        return make_streaming_loader(dataset, batch_size, even_shards=False, collate_fn=self.collate(dataset))

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        """An evaluation report (``Evaluation.as_dict`` with ``source``, ``data``...) as lines for people."""
        return [self.headline(report)]

    def export_network(self, model: Any) -> Any:
        """The module an exported file holds (a classifier: the model itself)."""
        return model

    def parity_inputs(self, network: Any, count: int) -> tuple[torch.Tensor, bool]:
        """Up to ``count`` real inputs from the model's own test split, and True; or random inputs
        of its size, and False, where it records none."""
        raise NotImplementedError(f"{self.name}: no export parity inputs")


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in a batch's inputs or targets (a tensor, or lists and dicts of them)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []
