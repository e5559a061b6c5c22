"""Using trained models: turning files into the inputs they expect."""
from .preprocess import InputSpec, input_spec, load_images

__all__ = ["InputSpec", "input_spec", "load_images"]
