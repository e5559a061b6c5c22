"""Static post-training int8 quantization: calibration images and ONNX Runtime's QDQ quantizer.

The quantized graph is ONNX with QuantizeLinear/DequantizeLinear pairs (QDQ) around each
convolution, per-channel symmetric int8 weights and uint8 activations whose ranges come from
calibration on real inputs: the format both ONNX Runtime and OpenVINO's CPU plugin turn into
int8 VNNI kernels. ``quant_pre_process`` (shape inference and graph optimisation) first matters:
without it ONNX Runtime ran ResNet-50's int8 graph at 1.5x eager fp32, with it at 8.1-11.6x
(benchmarks/README.md, "What was tried")."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..artifacts import model_dataset
from ..artifacts.cards import CardHolder
from ..data import DatasetError, eval_loader, sample_subset
from .export import INPUT

CALIBRATION_IMAGES = 256


def calibration_images(model: CardHolder, count: int = CALIBRATION_IMAGES, seed: int = 0) -> torch.Tensor:
    """``count`` images of the model's own training split, normalized as it was trained: the
    ranges int8 is calibrated to. The test split stays unseen, so int8 accuracy measured on it
    is a fair figure."""
    try:
        ds = sample_subset(model_dataset(model, split="train"), count, seed)
    except (ValueError, DatasetError) as e:
        raise ValueError(f"int8 needs calibration images and the model's training data is not at hand: {e}") from None
    return torch.cat([x for x, _ in eval_loader(ds, 256)])[:count].float()


def quantize_onnx(
    source: str | os.PathLike[str], target: str | os.PathLike[str], calibration: torch.Tensor, batch: int = 8
) -> Path:
    """Write ``source`` (a float ONNX file) quantized to int8 QDQ at ``target``, calibrated on
    ``calibration`` (min/max ranges over all of it, fed ``batch`` images at a time)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ValueError("int8 needs calibration: a tensor of real inputs, none given")
    batches = [calibration[i : i + batch].float().numpy() for i in range(0, len(calibration), batch)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self.items, None)
            return None if item is None else {INPUT: item}

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(
            str(prepared),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return Path(target)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The quantizer logs a line per copied bias at INFO on the root logger: not for a user's screen."""
    before = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(before)
