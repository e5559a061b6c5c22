"""Using trained models: turning files into the inputs they expect, predictions, evaluation of a
saved model, and publishing a finished run as shipped weights."""

from .evaluate import evaluate_model, evaluate_source
from .predict import Prediction, predict
from .preprocess import InputSpec, input_spec, load_images

__all__ = ["InputSpec", "Prediction", "evaluate_model", "evaluate_source", "input_spec", "load_images", "predict"]
