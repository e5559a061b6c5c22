"""``features_only``: the model as a backbone that returns multi-scale feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import FeatureInfo, ResNetBase


class FeatureListNet(nn.ModuleDict):
    """Runs the model's trunk (``model.trunk()``: stem, stages, final norm, in forward order) and
    returns the outputs named by ``out_indices`` (0 = stem, i = stage i). Modules past the last
    requested feature are dropped, so the backbone holds no parameter that cannot receive a
    gradient; the kept ones keep their names, so a classifier checkpoint loads into the backbone
    (less the head) unchanged."""

    def __init__(self, model: ResNetBase, out_indices: Sequence[int] | None = None):
        info = model.feature_info
        if out_indices is None:
            out_indices = tuple(range(1, len(info)))
        try:
            idx = sorted({range(len(info))[i] for i in out_indices})
        except IndexError:
            raise ValueError(
                f"out_indices={tuple(out_indices)}: this model has feature levels 0..{len(info) - 1} "
                f"(0 = stem, 1..{len(info) - 1} = stages)"
            ) from None
        selected = FeatureInfo(info[i] for i in idx)
        wanted = set(selected.module_name())
        children: dict[str, nn.Module] = {}
        for name, module in model.trunk():
            children[name] = module
            wanted.discard(name)
            if not wanted:
                break
        super().__init__(children)
        self.feature_info = selected
        self.out_indices = tuple(idx)
        self.return_layers = tuple(selected.module_name())
        self.first_conv = model.first_conv
        self.model_cfg = getattr(model, "model_cfg", None)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out.append(x)
        return out
