"""Exponential moving average of a model's weights and BN statistics."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def build_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights and BN statistics, or None for ``decay=0``.

    The decay warms up as (1 + n) / (10 + n) over the first updates (timm's ModelEma): a fixed
    0.999 would keep a third of the random initialisation in the average after 1000 steps."""
    if not decay:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema_decay={decay}: expected 0 (off) or a value in (0, 1)")

    @torch.no_grad()
    def update(
        ema_tensors: list[torch.Tensor] | tuple[torch.Tensor, ...],
        tensors: list[torch.Tensor] | tuple[torch.Tensor, ...],
        num_averaged: torch.Tensor | int,
    ) -> None:
        if not ema_tensors[0].is_floating_point():  # BN's num_batches_tracked: a count, not a weight
            torch._foreach_copy_(ema_tensors, tensors)
            return
        # Computed on the device, from the count AveragedModel keeps (and checkpoints): no sync per step.
        n = torch.as_tensor(num_averaged, device=ema_tensors[0].device).to(ema_tensors[0].dtype)
        weight = 1.0 - ((1.0 + n) / (10.0 + n)).clamp(max=decay)
        # A 0-d tensor weight is accepted at run time (and keeps the step free of a host sync);
        # PyTorch's stubs list only Python numbers for it.
        torch._foreach_lerp_(ema_tensors, tensors, weight)  # type: ignore[call-overload]

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
