"""A guard against a fault in oneDNN's bf16 convolution on CPUs with native bf16 (AVX-512 BF16,
AMX): the weight gradient of a convolution with a kernel and a stride over 1 whose input is a
single point (1x1 in 2-D, length 1 in 1-D) comes out of uninitialized memory, anything from NaN
to 1e36, differently on every call (oneDNN 3.12 in PyTorch 2.13, its ``jit_bf16`` backward-weights
kernel; seen at 16 and 64 channels, not at 8; fp32 and inputs of 2 or more are right). A stride
on a single point changes nothing in the forward pass, so nothing looks wrong until the weights
are ruined: an ImageNet-layout ResNet on 16px images, or a 1-D family net on series shorter than
17, hits it in its last stage. Found by this project's checkpointing test, which compares gradients bit for bit.

The guard watches every training forward in bf16 (the memory guard's probes included; a later
batch may be smaller, as a short bucket of series or a small image) and refuses, in one line,
before the layer's weight gradient is computed, naming the layer and what to change: in the
forward, or for a layer inside a segment of reentrant activation checkpointing (whose first
forward records no gradients) in its recomputation during the backward. A run stopped by it keeps its
last checkpoint. Evaluation (no gradients) and fp32 forwards pass."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..runtime.device import cpu_supports_bf16
from .hooks import HookBase


class UnsafeBf16Conv(ValueError):
    """A convolution whose bf16 weight gradient this CPU's oneDNN computes wrongly."""


def strided_convs(model: nn.Module) -> dict[str, _ConvNd]:
    """The convolutions, by name, that the fault can hit: a kernel and a stride over 1 (frozen ones
    too: a fine-tuning plan may unfreeze them after the first step)."""
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, _ConvNd) and not m.transposed and max(m.stride) > 1 and max(m.kernel_size) > 1
    }


def affected(precision: str, device: torch.device) -> bool:
    """Whether training at ``precision`` (resolved) on ``device`` runs oneDNN's native bf16 kernels."""
    return precision == "bf16" and device.type == "cpu" and cpu_supports_bf16()


def _in_bf16(x: torch.Tensor) -> bool:
    """Whether a convolution of ``x`` runs in bf16: a bf16 tensor, or CPU autocast to bf16."""
    autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return x.dtype == torch.bfloat16 or autocast


class Bf16ConvGuard(HookBase):
    """Refuses the run when a strided convolution gets a single-point input in a bf16 training
    forward on a CPU with native bf16; installs nothing elsewhere. Its checks are a shape test on a
    few layers per forward (the strided ones: 3 to 5 in the family's nets)."""

    def __init__(self) -> None:
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def before_train(self) -> None:
        t = self.trainer
        if not affected(t.precision.mode, t.device):
            return
        for name, conv in strided_convs(t.model).items():
            self._handles.append(conv.register_forward_pre_hook(self._check(name)))

    def after_train(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _check(name: str):
        def hook(conv: _ConvNd, args: tuple) -> None:
            x = args[0]
            if torch.is_grad_enabled() and _in_bf16(x) and x.dim() > 2 and all(s == 1 for s in x.shape[2:]):
                size = "x".join(str(s) for s in x.shape[2:])
                raise UnsafeBf16Conv(
                    f"precision bf16 on this CPU: layer {name!r} ({'x'.join(map(str, conv.kernel_size))} conv, "
                    f"stride {max(conv.stride)}) gets a {size} input, and oneDNN's native bf16 weight gradient for "
                    "that shape is wrong (uninitialized memory); train with --precision fp32, or on larger inputs "
                    "(--set data.image_size=..., or longer series)"
                )

        return hook
