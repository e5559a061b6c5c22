"""One precision path for every step (as nanoGPT's ``ctx``): an autocast context and a grad scaler
that is a no-op unless fp16 needs it. What each word means is ``resnetkit.runtime.precision``'s table."""

from __future__ import annotations

import contextlib
from typing import ClassVar

import torch

from ..runtime import resolve_precision


class Precision:
    """``mode`` resolved by the training column of ``resnetkit.runtime.precision``'s table. Weights,
    optimizer state and the loss stay fp32 in every mode."""

    DTYPES: ClassVar[dict[str, torch.dtype]] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

    def __init__(self, mode: str, device: torch.device):
        mode = resolve_precision(mode, device, "train")
        self.mode, self.device, self.dtype = mode, device, self.DTYPES[mode]
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    def autocast(self):
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)
