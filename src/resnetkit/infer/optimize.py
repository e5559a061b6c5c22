"""``optimize_for_inference``: the fast path ``predict`` and ``eval`` run by default.

BatchNorm is folded into the convolutions (one op less per conv, and the folded conv is what
oneDNN fuses with its ReLU), activations are channels_last (oneDNN's native layout on CPU: 1.5x
for ResNet-50 here), and matmuls run in bf16 where the CPU has native bf16 (AVX-512 BF16 or AMX)
or on CUDA: 3-4x over fp32 on this machine (../shared/reference/NUMBERS.md). The logits come back
as float32 whatever ran inside."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts import load_model
from ..models import ResNetBase, to_channels_last
from ..train.precision import cpu_supports_bf16
from .export import OnnxClassifier, fold_batchnorm

PRECISIONS = ("auto", "fp32", "bf16")


class InferenceModel(nn.Module):
    """A folded, channels_last copy of a classifier that keeps its interface (``num_classes``,
    ``pretrained_cfg``, ``model_cfg``, ``in_chans``, ``feature_info``) and says which path it runs."""

    def __init__(self, model: ResNetBase, precision: str = "auto", device: str | torch.device = "cpu"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.device = torch.device(device)
        if precision == "auto":
            native = self.device.type == "cuda" or cpu_supports_bf16()
            precision = "bf16" if native else "fp32"
        self.precision = precision
        self.inner = to_channels_last(fold_batchnorm(model.cpu()).to(self.device))
        self.num_classes: int = model.num_classes
        self.pretrained_cfg: dict[str, Any] = getattr(model, "pretrained_cfg", {})
        self.model_cfg: dict[str, Any] = getattr(model, "model_cfg", {})
        self.in_chans: int = model.in_chans
        self.feature_info = model.feature_info

    @property
    def path(self) -> str:
        dtype = "bf16 autocast" if self.precision == "bf16" else "fp32"
        return f"PyTorch {self.device.type}, {dtype}, BatchNorm folded, channels_last"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else contextlib.nullcontext()
        )
        with autocast:
            logits: torch.Tensor = self.inner(x)
        return logits.float()


def optimize_for_inference(
    model: ResNetBase, precision: str = "auto", device: str | torch.device = "cpu"
) -> InferenceModel:
    """The same float input, the same logits (as float32), faster: see the module's docstring.
    ``precision="fp32"`` keeps full precision with the folded, channels_last graph."""
    return InferenceModel(model.eval(), precision, device).eval()


Classifier = ResNetBase | OnnxClassifier | InferenceModel


def load_source(source: str | os.PathLike[str], device: str | torch.device = "cpu") -> ResNetBase | OnnxClassifier:
    """What ``predict`` and ``eval`` run: an exported ``.onnx`` file in ONNX Runtime, or anything
    ``load_model`` reads (tag, checkpoint, run folder, resnetkit safetensors) in PyTorch."""
    if str(source).endswith(".onnx") and Path(source).is_file():
        return OnnxClassifier(source)
    return load_model(source, device=device)


def fast_path(model: Classifier, precision: str, device: str | torch.device = "cpu") -> Classifier:
    """``optimize_for_inference`` for a PyTorch model; an ONNX file (ONNX Runtime) or a model
    already optimized runs as it is."""
    if not isinstance(model, ResNetBase):
        return model
    return optimize_for_inference(model, precision, device)


def path_of(model: Classifier) -> str:
    """Which inference path ``model`` runs, in words."""
    if isinstance(model, OnnxClassifier):
        return "ONNX Runtime CPU, fp32"
    if isinstance(model, InferenceModel):
        return model.path
    return "PyTorch eager, the model as it is (the fp32 reference)"
