"""Training library: configs, recipes, the engine, checkpoints; the CLI is a thin layer over it."""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, DataConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig
from .engine import FitResult, TrainingDiverged, TrainingInterrupted, fit
from .evaluate import EvalResult, evaluate
from .recipes import RECIPES, recipe

__all__ = [
    "ConfigError", "DataConfig", "EvalResult", "FitResult", "ModelConfig", "OptimConfig", "RECIPES",
    "ScheduleConfig", "TrainConfig", "TrainingDiverged", "TrainingInterrupted", "evaluate", "fit",
    "load_checkpoint", "recipe", "save_checkpoint",
]
