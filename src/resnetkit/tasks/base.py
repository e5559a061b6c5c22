"""The contract between the training engine and a task. The engine is one loop that knows no
labels, heads or metrics: a task says how a batch is made, which model it needs, what the loss
is, which statistics a step adds up and how evaluation reduces across processes, and what
"better" means when a checkpoint is chosen (as detectron2's trainer makes no assumption about
what it trains)."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

Batch = tuple[Any, Any]
Reduce = Callable[[torch.Tensor], torch.Tensor]  # sums a tensor over processes (identity in one)
Autocast = Callable[[], AbstractContextManager[Any]]


class Evaluation(Protocol):
    """What a task's evaluation returns: scalars the engine logs (``loss`` among them) and a
    JSON-able report with whatever else the task measured (per-class accuracy, confusion...)."""

    def scalars(self) -> dict[str, float]: ...

    def as_dict(self, names: list[str] | None = None) -> dict[str, Any]: ...


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

    @classmethod
    def from_options(cls, **options: Any) -> Task:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in known})

    @abstractmethod
    def splits(self, name: str) -> tuple[str, ...]:
        """The splits dataset ``name`` has (``train`` always; ``val`` and ``test`` where they exist)."""

    @abstractmethod
    def load_dataset(self, name: str, split: str, data_dir: str | None, download: bool, image_size: int) -> Any:
        """A split (``"train"``, ``"val"`` or ``"test"``) of a dataset this task trains on."""

    @abstractmethod
    def dataset_meta(self, train: Any, name: str, image_size: int) -> dict[str, Any]:
        """What a checkpoint keeps about the data so the model can be used without it."""

    @abstractmethod
    def build_model(self, model_name: str, meta: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
        """A fresh model with the head this task and dataset need."""

    def make_batch(self, batch: Batch, device: torch.device) -> Batch:
        """(inputs, targets) on ``device``."""
        x, y = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def collate(self, dataset: Any) -> Callable[[list[Any]], Batch] | None:
        """How a streamed dataset's samples become a batch (None: the loader's default, which
        normalizes uint8 images and stacks labels)."""
        return None

    def forward(self, model: nn.Module, x: Any, targets: Any) -> Any:
        """The training forward pass (a detector takes the targets and returns its losses)."""
        return model(x)

    def batch_size(self, targets: Any) -> int:
        return len(targets)

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
