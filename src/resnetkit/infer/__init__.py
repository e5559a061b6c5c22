"""Using trained models: turning files into the inputs they expect, predictions, evaluation of a
saved model, export (ONNX, torch.export, TorchScript) with a parity check, and publishing a
finished run as shipped weights."""

from .evaluate import evaluate_model, evaluate_source
from .export import FORMATS, ExportError, OnnxClassifier, Parity, export_model
from .optimize import Classifier, InferenceModel, fast_path, load_source, optimize_for_inference, path_of
from .predict import Prediction, predict
from .preprocess import InputSpec, input_spec, load_images

__all__ = [
    "FORMATS",
    "Classifier",
    "ExportError",
    "InferenceModel",
    "InputSpec",
    "OnnxClassifier",
    "Parity",
    "Prediction",
    "evaluate_model",
    "evaluate_source",
    "export_model",
    "fast_path",
    "input_spec",
    "load_images",
    "load_source",
    "optimize_for_inference",
    "path_of",
    "predict",
]
