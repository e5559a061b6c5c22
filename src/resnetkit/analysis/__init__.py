"""Analyses of trained and freshly built ResNets: gradient flow and shattering at initialization,
layer responses, lesion studies and Grad-CAM, each as plain data plus a PNG and a JSON writer."""
from .degradation import DegradationResult, TwinRun, run_degradation, write_degradation
from .gradcam import GradCAM, grad_cam
from .gradients import (
    GradientComparison, GradientProbe, LayerGradient, ModelGradients, compare_gradients, gradient_spread,
    layer_gradients, measure_gradients, model_at_init,
)
from .lesion import LesionReport, UnitLesion, accuracy, accuracy_without, lesion_study
from .plots import plot_degradation, plot_gradcam, plot_gradients, plot_lesion, plot_responses
from .records import to_jsonable, write_json
from .responses import ResponseProfile, layer_responses
from .shattered import GradientCorrelation, autocorrelation, gradient_correlation, input_gradients

__all__ = [
    "DegradationResult", "TwinRun", "plot_degradation", "run_degradation", "write_degradation",
    "GradCAM", "GradientComparison", "GradientCorrelation", "GradientProbe", "LayerGradient", "LesionReport",
    "ModelGradients", "ResponseProfile", "UnitLesion", "accuracy", "accuracy_without", "autocorrelation",
    "compare_gradients", "grad_cam", "gradient_correlation", "gradient_spread", "input_gradients",
    "layer_gradients", "layer_responses", "lesion_study", "measure_gradients", "model_at_init", "plot_gradcam", "plot_gradients", "plot_lesion",
    "plot_responses", "to_jsonable", "write_json",
]
