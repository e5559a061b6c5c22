"""``optimize_for_inference``: the fast path ``predict`` and ``eval`` run by default.

Whatever runs inside, the module takes the model's float input and gives its logits as float32.
Two engines, chosen by measurement (benchmarks/README.md):

- **OpenVINO** on the CPU, where it is installed: the model exported to ONNX with BatchNorm folded
  and compiled by OpenVINO's CPU plugin, in bf16 where the CPU has native bf16 (AVX-512 BF16 or
  AMX), fp32 elsewhere, or int8 (static post-training quantization calibrated on real images,
  ``resnetkit.infer.quantize``). ResNet-50 at batch 32 on this machine kind: 5.2x eager fp32 in
  bf16, 10x in int8.
- **PyTorch** on CUDA, on CPUs without OpenVINO, and with ``compile=True``: BatchNorm folded into
  the convolutions, channels_last activations (oneDNN's native layout on CPU), bf16 autocast where
  native, and ``torch.compile`` (with weight freezing) on request: 3.4x (3.7x compiled) in bf16."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts import load_model, model_card
from ..models import ResNetBase, to_channels_last
from ..runtime import is_reference, resolve_precision
from ..tasks import task_of
from .export import OnnxClassifier, fold_batchnorm
from .openvino_model import OpenVINOModel, openvino_available
from .preprocess import input_size
from .quantize import calibration_images

ENGINES = ("auto", "openvino", "torch")


class TorchInference(nn.Module):
    """The PyTorch engine: a folded, channels_last copy run in ``precision`` (fp32 or bf16 autocast),
    compiled by ``torch.compile`` with its weights frozen into the graph when ``compiled``."""

    def __init__(self, model: nn.Module, precision: str, device: torch.device, compiled: bool = False):
        super().__init__()
        self.device, self.precision = device, precision
        self.inner = to_channels_last(fold_batchnorm(model.cpu()).to(device))
        # freezing: constant weights folded and prepacked for oneDNN at compile time.
        self.run = torch.compile(self.inner, options={"freezing": True}) if compiled else self.inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else contextlib.nullcontext()
        )
        with autocast:
            logits: torch.Tensor = self.run(x)
        return logits.float()


class InferenceModel(nn.Module):
    """A classifier's fast path with the classifier's interface (``num_classes``, ``card``,
    ``model_cfg``, ``in_chans``, ``feature_info``); ``path`` says, in words, what runs."""

    def __init__(self, model: ResNetBase, runner: nn.Module, precision: str, path: str):
        super().__init__()
        self.runner, self.precision, self.path = runner, precision, path
        self.num_classes: int = model.num_classes
        self.card = model_card(model)
        self.model_cfg: dict[str, Any] = getattr(model, "model_cfg", {})
        self.in_chans: int = model.in_chans
        self.feature_info = model.feature_info

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.runner(x)
        assert isinstance(logits, torch.Tensor), "a classifier's runner gives one tensor of logits"
        return logits.float()


def optimize_for_inference(
    model: ResNetBase,
    precision: str = "auto",
    calibration: torch.Tensor | None = None,
    compile: bool = False,  # noqa: A002  # torch.compile's name, as torch.nn.Module.compile has it
    device: str | torch.device = "cpu",
    engine: str = "auto",
    image_size: tuple[int, int] | None = None,
) -> InferenceModel:
    """The same float input, the same logits (as float32), faster: see the module's docstring.

    ``precision`` is the engine's: ``auto`` (bf16 where native, else fp32, as
    ``resnetkit.runtime.precision``'s table has it), ``bf16``, ``int8`` (OpenVINO; ``calibration``
    is a tensor of real, normalized inputs), or ``fp32``, the folded fp32 engine (a user's
    ``--precision fp32`` is the reference and never comes here: ``fast_path``). ``engine``: ``auto``
    (OpenVINO on a CPU where it is installed, else PyTorch), ``openvino`` or ``torch``.
    ``compile``: ``torch.compile`` on the PyTorch engine. OpenVINO compiles for one spatial size:
    ``image_size``, else the calibration's, else the one the model was trained at."""
    dev = torch.device(device)
    precision = resolve_precision(precision, dev, "infer")
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    model = model.eval()
    if engine == "auto":
        engine = "openvino" if dev.type == "cpu" and not compile and openvino_available() else "torch"
    if engine == "openvino":
        if dev.type != "cpu" or compile:
            raise ValueError("engine openvino runs on the CPU, without torch.compile")
        if not openvino_available():
            raise ValueError("engine openvino: OpenVINO is not installed (pip install 'resnetkit[fast]')")
        if precision == "int8" and (calibration is None or len(calibration) == 0):
            raise ValueError("precision int8 needs calibration: a tensor of real, normalized inputs")
        height, width = image_size or (
            (int(calibration.shape[-2]), int(calibration.shape[-1])) if calibration is not None else input_size(model)
        )
        if calibration is not None and tuple(calibration.shape[-2:]) != (height, width):
            raise ValueError(f"calibration images are {tuple(calibration.shape[-2:])}, image_size {(height, width)}")
        example = torch.zeros(2, model.in_chans, height, width)
        runner: nn.Module = OpenVINOModel.from_model(model, precision, example, calibration)
        what = (
            f"int8 (static QDQ, calibrated on {len(calibration)} images; other layers {runner.runs_in})"
            if precision == "int8" and calibration is not None
            else runner.runs_in
        )
        return InferenceModel(model, runner, precision, f"OpenVINO CPU, {what}, BatchNorm folded").eval()
    if precision == "int8":
        raise ValueError("precision int8 runs on OpenVINO's CPU plugin: install openvino or choose bf16 or fp32")
    runner = TorchInference(model, precision, dev, compile)
    dtype = "bf16 autocast" if precision == "bf16" else "fp32"
    compiled = ", torch.compile" if compile else ""
    path = f"PyTorch {dev.type}, {dtype}, BatchNorm folded, channels_last{compiled}"
    return InferenceModel(model, runner, precision, path).eval()


Classifier = ResNetBase | OnnxClassifier | InferenceModel


def load_source(source: str | os.PathLike[str], device: str | torch.device = "cpu") -> ResNetBase | OnnxClassifier:
    """What ``predict`` and ``eval`` run: an exported ``.onnx`` file in ONNX Runtime, or anything
    ``load_model`` reads (tag, checkpoint, run folder, resnetkit safetensors) in PyTorch."""
    if str(source).endswith(".onnx") and Path(source).is_file():
        return OnnxClassifier(source)
    return load_model(source, device=device)


def fast_path(model: Classifier, precision: str, device: str | torch.device = "cpu") -> Classifier:
    """What a user's ``--precision`` runs (``resnetkit.runtime.precision``'s inference column):
    ``fp32`` is the reference, the model as it is; any other word is ``optimize_for_inference`` for
    a PyTorch model (int8 calibrated on its own training images), while an ONNX file (ONNX Runtime)
    or a model already optimized runs as it is."""
    if is_reference(precision):
        return model
    if not task_of(model).fast_path:  # its input size varies (a sequence's length): as it is
        if precision == "int8":
            raise ValueError(f"--precision int8: a {task_of(model).name} model runs as it is, in fp32 or bf16")
        return model
    if not isinstance(model, ResNetBase):
        if precision == "int8":
            raise ValueError("--precision int8 needs a PyTorch model; an .onnx file runs in ONNX Runtime as exported")
        return model
    calibration = calibration_images(model) if precision == "int8" else None
    return optimize_for_inference(model, precision, calibration, device=device)


def path_of(model: Classifier) -> str:
    """Which inference path ``model`` runs, in words."""
    if isinstance(model, OnnxClassifier):
        return "ONNX Runtime CPU, fp32"
    if isinstance(model, InferenceModel):
        return model.path
    return "PyTorch eager, the model as it is (the fp32 reference)"
