"""Tasks: each says how a batch is made, which head and loss it needs, how its metrics reduce
across processes and what "better" means, and above the engine how a saved model of its kind is
fed, predicts, is written out, evaluated and exported. A new task is a new entry here, not a
branch in the engine or in any tool: every tool dispatches through ``task_of(model)``."""

from typing import Any

from ..artifacts import ModelCard, model_card
from ..data.scenes import SceneSpec
from .base import Evaluation, PredictOptions, Prepared, Task, TensorSpec
from .classification import Classification, EvalResult, evaluate, model_logits
from .detection import Detection, DetectionResult, coco_map, evaluate_detection
from .segmentation import Segmentation, SegmentationResult, evaluate_segmentation
from .sequence import SequenceClassification

TASKS: dict[str, type[Task]] = {t.name: t for t in (Classification, Segmentation, Detection, SequenceClassification)}


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_for(card: ModelCard) -> Task:
    """The task a model's record names, with the options its training used (TTA, label
    smoothing, the scenes and the seed that drew them)."""
    config = card.config
    data = config.get("data") or {}
    return get_task(card.task).from_options(
        label_smoothing=(config.get("optim") or {}).get("label_smoothing", 0.0),
        tta_flip=card.tta_flip,
        tta_shift=card.tta_shift,
        scenes=SceneSpec(**(data.get("scenes") or {})),
        seed=card.seed,
        max_length=data.get("max_length"),
        normalize=data.get("normalize") or "series",
    )


def task_of(model: Any) -> Task:
    """``task_for`` the record ``model`` carries."""
    return task_for(model_card(model))


__all__ = [
    "TASKS",
    "Classification",
    "Detection",
    "DetectionResult",
    "EvalResult",
    "Evaluation",
    "PredictOptions",
    "Prepared",
    "Segmentation",
    "SegmentationResult",
    "SequenceClassification",
    "Task",
    "TensorSpec",
    "coco_map",
    "evaluate",
    "evaluate_detection",
    "evaluate_segmentation",
    "get_task",
    "model_logits",
    "task_for",
    "task_of",
]
