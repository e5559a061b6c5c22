"""Tasks the training engine can host: each says how a batch is made, which head and loss it
needs, how its metrics reduce across processes and what "better" means. Classification is the
first; a new task is a new entry here, not a branch in the engine."""

from .base import Evaluation, Task
from .classification import Classification, EvalResult, evaluate, model_logits

TASKS: dict[str, type[Task]] = {Classification.name: Classification}


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "Classification", "EvalResult", "Evaluation", "Task", "evaluate", "get_task", "model_logits"]
