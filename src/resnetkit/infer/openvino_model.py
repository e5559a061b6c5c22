"""A model compiled by OpenVINO's CPU plugin: the CPU engine behind ``optimize_for_inference``,
chosen by measurement (benchmarks/README.md).

On this machine kind (2 cores, AVX-512 with BF16 and VNNI), ResNet-50 at batch 32: OpenVINO ran
bf16 at 5.1-5.3x eager fp32, where PyTorch's own bf16 path (BN folded, channels_last, autocast)
ran 3.4x and ``torch.compile`` 3.7x; and int8 at 10.2x, where ONNX Runtime ran the same QDQ graph
at 9.1x and PyTorch's PT2E + Inductor int8 at 8.7x."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .export import Exportable, write_onnx
from .quantize import quantize_onnx

# What each precision asks of the CPU plugin. int8 leaves the layers the quantizer kept in float
# to the plugin's default: bf16 where the CPU has it, fp32 elsewhere.
_PRECISION_HINT = {"fp32": "f32", "bf16": "bf16", "int8": None}


@functools.cache
def core() -> Any:
    """One ``openvino.Core`` for the process, never freed. Its CPU plugin installs an alternate
    signal stack on the thread that creates it and frees the memory with the plugin without
    removing it: a signal delivered after that (Python's handlers ask for the alternate stack)
    lands on freed memory and the process dies of SIGSEGV. Found as a crash on Ctrl-C in
    training after two models had been compiled and one of them collected."""
    import openvino as ov

    return ov.Core()


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVINOModel(nn.Module):
    """An ONNX file compiled for the CPU: float32 NCHW in (any batch, the spatial size it was
    exported at), float32 logits (or one tensor per feature level) out."""

    def __init__(self, onnx_path: str | os.PathLike[str], precision: str = "fp32", threads: int | None = None):
        super().__init__()
        if precision not in _PRECISION_HINT:
            raise ValueError(f"precision {precision!r}: OpenVINO runs fp32, bf16 or int8")
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}  # one request, every core on it
        if _PRECISION_HINT[precision]:
            config["INFERENCE_PRECISION_HINT"] = _PRECISION_HINT[precision]
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core().compile_model(str(onnx_path), "CPU", config)
        self.precision = precision
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.runs_in = {"f32": "fp32", "f16": "fp16"}.get(hint, hint)
        self._request = self.compiled.create_infer_request()

    @classmethod
    def from_model(
        cls,
        model: Exportable,
        precision: str,
        example: torch.Tensor,
        calibration: torch.Tensor | None = None,
        threads: int | None = None,
    ) -> OpenVINOModel:
        """``model`` exported to ONNX with BatchNorm folded (int8: quantized to QDQ, calibrated on
        ``calibration``), then compiled. ``example`` fixes the channels and spatial size."""
        with tempfile.TemporaryDirectory() as tmp:
            path = write_onnx(model, Path(tmp) / "model.onnx", example)
            if precision == "int8":
                if calibration is None:
                    raise ValueError("precision int8 needs calibration: a tensor of real inputs")
                path = quantize_onnx(path, Path(tmp) / "model.int8.onnx", calibration)
            return cls(path, precision, threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        outputs = self._request.infer({0: array})
        # Copied out: the request reuses its output buffers on the next call.
        results = [torch.from_numpy(np.array(outputs[o], dtype=np.float32)) for o in self.compiled.outputs]
        return results[0] if len(results) == 1 else results
