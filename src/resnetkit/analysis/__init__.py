"""Analyses that measure given models and never train: gradient flow and shattering at
initialization, layer responses, lesion studies and Grad-CAM, each as plain data. Their figures
live in ``resnetkit.analysis.plots`` (matplotlib is loaded only there)."""

from .gradcam import GradCAM, grad_cam
from .gradients import (
    GradientComparison,
    GradientProbe,
    LayerGradient,
    ModelGradients,
    compare_gradients,
    gradient_spread,
    layer_gradients,
    measure_gradients,
    model_at_init,
)
from .lesion import LesionReport, UnitLesion, accuracy, accuracy_without, lesion_study
from .records import to_jsonable, write_json
from .responses import ResponseProfile, layer_responses
from .shattered import GradientCorrelation, autocorrelation, gradient_correlation, input_gradients

__all__ = [
    "GradCAM",
    "GradientComparison",
    "GradientCorrelation",
    "GradientProbe",
    "LayerGradient",
    "LesionReport",
    "ModelGradients",
    "ResponseProfile",
    "UnitLesion",
    "accuracy",
    "accuracy_without",
    "autocorrelation",
    "compare_gradients",
    "grad_cam",
    "gradient_correlation",
    "gradient_spread",
    "input_gradients",
    "layer_gradients",
    "layer_responses",
    "lesion_study",
    "measure_gradients",
    "model_at_init",
    "to_jsonable",
    "write_json",
]
