"""resnetkit: residual networks from the papers, weight-compatible with torchvision and timm.

The names a user calls most are here at the top level. Those of the training engine and the
inference tools are imported on first use (PEP 562), so ``import resnetkit`` stays as light as the
model registry and ``resnetkit info`` never loads the engine."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .artifacts import export_weights, load_model, save_weights
from .models import create_model, list_models, list_pretrained, load_weights

if TYPE_CHECKING:
    from .infer import evaluate_source as evaluate
    from .infer import export_model as export
    from .infer import optimize_for_inference, predict
    from .train import TrainConfig, fit

__version__ = "0.1.0"

# name at the top level -> (module, name there)
_LAZY = {
    "fit": ("resnetkit.train", "fit"),
    "TrainConfig": ("resnetkit.train", "TrainConfig"),
    "predict": ("resnetkit.infer", "predict"),
    "evaluate": ("resnetkit.infer", "evaluate_source"),
    "export": ("resnetkit.infer", "export_model"),
    "optimize_for_inference": ("resnetkit.infer", "optimize_for_inference"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = [
    "TrainConfig",
    "__version__",
    "create_model",
    "evaluate",
    "export",
    "export_weights",
    "fit",
    "list_models",
    "list_pretrained",
    "load_model",
    "load_weights",
    "optimize_for_inference",
    "predict",
    "save_weights",
]
