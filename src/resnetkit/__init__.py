"""resnetkit: residual networks from the papers, weight-compatible with torchvision and timm."""

from .artifacts import export_weights, load_model, save_weights
from .models import create_model, list_models, list_pretrained, load_weights

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "create_model",
    "export_weights",
    "list_models",
    "list_pretrained",
    "load_model",
    "load_weights",
    "save_weights",
]
