"""Using trained models: turning files into the inputs they expect, and predictions."""
from .predict import Prediction, predict
from .preprocess import InputSpec, input_spec, load_images

__all__ = ["InputSpec", "Prediction", "input_spec", "load_images", "predict"]
