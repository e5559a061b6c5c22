"""Tasks the training engine can host: each says how a batch is made, which head and loss it
needs, how its metrics reduce across processes and what "better" means. Classification is the
first; a new task is a new entry here, not a branch in the engine."""

from .base import Evaluation, Task
from .classification import Classification, EvalResult, evaluate, model_logits
from .detection import Detection, DetectionResult, coco_map, evaluate_detection
from .segmentation import Segmentation, SegmentationResult, evaluate_segmentation

TASKS: dict[str, type[Task]] = {t.name: t for t in (Classification, Segmentation, Detection)}


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


__all__ = [
    "TASKS",
    "Classification",
    "Detection",
    "DetectionResult",
    "EvalResult",
    "Evaluation",
    "Segmentation",
    "SegmentationResult",
    "Task",
    "coco_map",
    "evaluate",
    "evaluate_detection",
    "evaluate_segmentation",
    "get_task",
    "model_logits",
]
