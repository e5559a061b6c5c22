"""A guard against a fault in oneDNN's bf16 convolution on CPUs with native bf16 (AVX-512 BF16,
AMX): the weight gradient of a convolution with a kernel and a stride over 1 whose input is a
single point (1x1 in 2-D, length 1 in 1-D) comes out of uninitialized memory, anything from NaN
to 1e36, differently on every call (oneDNN 3.12 in PyTorch 2.13, its ``jit_bf16`` backward-weights
kernel; 16 channels or more; fp32 and inputs of 2 or more are right). A stride on a single point
changes nothing in the forward pass, so nothing looks wrong until the weights are ruined: an
ImageNet-layout ResNet on 16px images, or a 1-D family net on series shorter than 17, hits it in
its last stage. Found by this project's checkpointing test, which compares gradients bit for bit.

The guard watches the first step's forward (the memory guard's probes included) and refuses, in
one line, before any backward pass, naming the layer and what to change."""

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


class Bf16ConvGuard(HookBase):
    """Refuses the run when, in its first step, a strided convolution gets a single-point input
    under native CPU bf16; does nothing otherwise (and costs nothing after the first step)."""

    def __init__(self) -> None:
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def before_train(self) -> None:
        t = self.trainer
        if not affected(t.precision.mode, t.device):
            return
        for name, conv in strided_convs(t.model).items():
            self._handles.append(conv.register_forward_pre_hook(self._check(name, conv)))

    def after_step(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _check(name: str, conv: _ConvNd):
        def hook(module: nn.Module, args: tuple) -> None:
            x = args[0]
            if torch.is_grad_enabled() and x.dim() > 2 and all(s == 1 for s in x.shape[2:]):
                size = "x".join(str(s) for s in x.shape[2:])
                raise UnsafeBf16Conv(
                    f"precision bf16 on this CPU: layer {name!r} ({'x'.join(map(str, conv.kernel_size))} conv, "
                    f"stride {max(conv.stride)}) gets a {size} input, and oneDNN's native bf16 weight gradient for "
                    "that shape is wrong (uninitialized memory); train with --precision fp32, or on larger inputs "
                    "(--set data.image_size=..., or longer series)"
                )

        return hook
