"""Layer responses (He et al. 2015, arXiv:1512.03385, §4.2 and Fig. 7): the std of what each
residual function adds to its input. ResNets respond more weakly than their plain twins, and
deeper ResNets more weakly still: each unit modifies the signal less."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models import ResNetBase
from .inputs import model_device
from .state import preserved_state
from .units import is_residual, named_units


@dataclass
class ResponseProfile:
    """Std of each unit's ``branch_out`` output, units in forward order. Fig. 7 plots every 3x3
    layer's BN output; the branch's last one is the response the shortcut adds to."""

    units: list[str]
    std: list[float]
    residual: bool

    def sorted_std(self) -> list[float]:
        """Largest first, as the bottom panel of Fig. 7."""
        return sorted(self.std, reverse=True)


def layer_responses(model: ResNetBase, images: torch.Tensor) -> ResponseProfile:
    """Responses on a batch of ``images``, in eval mode (the model's modes are restored)."""
    units = named_units(model)
    outputs: dict[str, torch.Tensor] = {}

    def keeper(name: str):
        def keep(module, args, out):
            outputs[name] = out.detach()

        return keep

    handles = [unit.branch_out.register_forward_hook(keeper(name)) for name, unit in units]
    try:
        with preserved_state(model, train=False), torch.no_grad():
            model(images.to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return ResponseProfile(
        units=[name for name, _ in units],
        std=[float(outputs[name].float().std()) for name, _ in units],
        residual=is_residual(model),
    )
