"""One precision path for every step (as nanoGPT's ``ctx``): an autocast context and a grad scaler
that is a no-op unless fp16 needs it."""

from __future__ import annotations

import contextlib
from typing import ClassVar

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: CUDA is not available on this machine")
    return device


def cpu_supports_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run ~4x faster than fp32 (../shared/reference/NUMBERS.md)."""
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )


class Precision:
    """``auto``: bf16 autocast on CUDA with bf16 (else fp16 + loss scaling) and on CPUs with native
    bf16, fp32 elsewhere. Weights, optimizer state and the loss stay fp32 in every mode."""

    DTYPES: ClassVar[dict[str, torch.dtype]] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

    def __init__(self, mode: str, device: torch.device):
        if mode not in ("auto", *self.DTYPES):
            raise ValueError(f"precision={mode!r}: expected auto, bf16, fp16 or fp32")
        if mode == "auto":
            if device.type == "cuda":
                mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            else:
                mode = "bf16" if cpu_supports_bf16() else "fp32"
        if mode == "fp16" and device.type != "cuda":
            raise ValueError("precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        self.mode, self.device, self.dtype = mode, device, self.DTYPES[mode]
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    def autocast(self):
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)
