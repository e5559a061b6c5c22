"""Using trained models: turning files into the inputs they expect, predictions, evaluation of a
saved model, export (ONNX, torch.export, TorchScript) with a parity check, and publishing a
finished run as shipped weights."""

from .evaluate import evaluate_model, evaluate_source
from .export import FORMATS, Classifier, ExportError, OnnxClassifier, Parity, export_model, load_source
from .predict import Prediction, predict
from .preprocess import InputSpec, input_spec, load_images

__all__ = [
    "FORMATS",
    "Classifier",
    "ExportError",
    "InputSpec",
    "OnnxClassifier",
    "Parity",
    "Prediction",
    "evaluate_model",
    "evaluate_source",
    "export_model",
    "input_spec",
    "load_images",
    "load_source",
    "predict",
]
