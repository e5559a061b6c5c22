"""The serving seam, in LitServe's shape: ``decode`` a request's image (where hostile input is
met), ``predict`` a batch (where the speed is, on the model thread), ``encode`` each answer. The
model's task implements all three (``Task.prepare``, ``Task.predict_batch``, ``Task.encode``), so
one app serves classifiers, segmenters and detectors alike, and a new task is served by writing
its task, not by touching the app."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..artifacts import ModelCard, model_card
from ..infer import Classifier, fast_path, load_source, path_of
from ..tasks import PredictOptions, Prepared, Task, task_of
from .batcher import Batcher
from .config import ServeConfig
from .decode import HTTPError, Upload, decode

log = logging.getLogger("resnetkit.serve")


@dataclass
class Service:
    """A loaded model behind the seam: what the routes share once it is ready."""

    source: str
    model: Any  # as loaded: Grad-CAM needs the PyTorch model's gradients
    runner: Any  # what the batches run (a classifier's fast path; a dense model as it is)
    task: Task
    card: ModelCard
    inputs: dict[str, Any]  # what the model takes (Task.input_facts), as /v1/model says it
    batcher: Batcher

    @property
    def name(self) -> str:
        return str((self.model.model_cfg or {}).get("name") or self.source)

    @property
    def classes(self) -> list[str] | None:
        return list(self.card.classes) if self.card.classes else None

    def decode(self, upload: Upload, max_pixels: int) -> Prepared:
        return decode(upload, self.task, self.model, max_pixels)

    async def predict(self, prepared: list[Prepared]) -> list[Any]:
        """The model's outputs for the prepared images, batched with other requests' images."""
        outputs: list[Any] = await self.batcher([p.input for p in prepared])
        return outputs

    def encode(self, output: Any, prepared: Prepared, options: PredictOptions) -> dict[str, Any]:
        return {"image": prepared.name, **self.task.encode(output, prepared, self.classes, options)}


def load_service(source: str, config: ServeConfig, on_batch: Any, model: Classifier | None = None) -> Service:
    """The model of ``source`` (or ``model``, already loaded from it) behind a batcher, warmed up
    at the sizes it will meet: a full batch and one image."""
    model = model if model is not None else load_source(source)
    task, card = task_of(model), model_card(model)
    runner = fast_path(model, config.precision)
    # The batch-wide options: TTA (flips, shifts) as the model's training evaluated. What a request may ask
    # (top-k, a minimum score) applies when its answer is encoded.
    options = PredictOptions(tta_flip=card.tta_flip, tta_shift=card.tta_shift)

    def counted(x: Any) -> Any:
        """The model call, counted as the images it runs (TTA's other views included)."""
        on_batch(len(x))
        return runner(x)

    def run(inputs: list[torch.Tensor]) -> list[Any]:
        with torch.inference_mode():
            return task.predict_batch(counted, inputs, options)

    batcher = Batcher(run, config.max_batch, config.max_wait_ms / 1000, collate=list, join=list)
    warm = task.warm_input(model)
    with torch.inference_mode():  # not counted: no request's images
        task.predict_batch(runner, [warm] * config.max_batch, options)
        task.predict_batch(runner, [warm], options)
    log.info("serving %s (%s): %s", source, task.name, path_of(runner))
    return Service(source, model, runner, task, card, task.input_facts(model), batcher)


@dataclass
class Slot:
    """One served model, by the name clients use: loading, ready (``service``), or failed (``error``)."""

    name: str
    source: str
    version: str = "1"
    model: Any = None  # already loaded (by the command line), or None: loaded from ``source``
    service: Service | None = None
    error: str | None = None

    @property
    def state(self) -> str:
        """As Triton's repository index says it: READY, LOADING or UNAVAILABLE."""
        if self.error is not None:
            return "UNAVAILABLE"
        if self.service is None:
            return "LOADING"
        return "READY" if self.service.batcher.running else "UNAVAILABLE"

    @property
    def reason(self) -> str:
        if self.error is not None:
            return self.error
        if self.service is not None and not self.service.batcher.running:
            return "the batcher stopped"
        return ""

    def get(self) -> Service:
        """The service, or a 503 saying why there is none (yet)."""
        if self.error is not None:
            raise HTTPError(503, f"model {self.name!r} could not be loaded: {self.error}")
        if self.service is None:
            raise HTTPError(503, f"model {self.name!r} is loading")
        if not self.service.batcher.running:
            raise HTTPError(503, f"model {self.name!r}: the batcher stopped")
        return self.service

    def index_entry(self) -> dict[str, Any]:
        entry = {"name": self.name, "version": self.version, "state": self.state, "source": self.source}
        return {**entry, "reason": self.reason} if self.reason else entry


def served_name(source: str) -> str:
    """The name a model is served under, from its source: a tag as it is, a file by its stem
    (a run's ``best.pt`` or ``last.pt`` by its run folder's name), a folder by its name."""
    path = Path(source)
    if not path.exists():
        return source
    if path.is_file():
        return path.parent.name if path.stem in ("best", "last", "model") and path.parent.name else path.stem
    return path.resolve().name
