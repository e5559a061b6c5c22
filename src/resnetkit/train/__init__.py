"""Training library: configs, recipes, the one engine loop over any task, optimizers and
schedules, precision, distributed set-up; the CLI is a thin layer over it.

Names are imported on first use (PEP 562), so ``resnetkit.train.precision`` or
``resnetkit.train.config`` can be used without loading the engine."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ConfigError, DataConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig
    from .engine import FitResult, Trainer, TrainingDiverged, TrainingInterrupted, fit
    from .recipes import RECIPES, recipe

_EXPORTS = {
    "ConfigError": "config",
    "DataConfig": "config",
    "ModelConfig": "config",
    "OptimConfig": "config",
    "ScheduleConfig": "config",
    "TrainConfig": "config",
    "FitResult": "engine",
    "Trainer": "engine",
    "TrainingDiverged": "engine",
    "TrainingInterrupted": "engine",
    "fit": "engine",
    "RECIPES": "recipes",
    "recipe": "recipes",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = [
    "RECIPES",
    "ConfigError",
    "DataConfig",
    "FitResult",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "fit",
    "recipe",
]
