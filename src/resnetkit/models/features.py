"""``features_only``: the model as a backbone that returns multi-scale feature maps."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .base import FeatureInfo, ResNetBase
from .stage import set_grad_checkpointing


class _FeatureNet(nn.ModuleDict):
    """Runs the model's trunk (``model.trunk()``: stem, stages, final norm, in forward order) and
    collects the outputs named by ``out_indices`` (0 = stem, i = stage i). Modules past the last
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
        # The classifier's part names, for those parts kept: transfer learning freezes by them.
        self.stem_names = tuple(n for n in model.stem_names if n in children)
        self.stage_names = tuple(n for n in model.stage_names if n in children)
        self.tail_names = tuple(n for n in model.tail_names if n in children)
        self.model_cfg = getattr(model, "model_cfg", None)

    def set_grad_checkpointing(self, enable: bool = True, every: int | None = None, *, reentrant: bool = False) -> None:
        """As the classifier's: the stages kept here checkpoint their segments."""
        set_grad_checkpointing(self, enable, every, reentrant=reentrant)

    def _collect(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out.append(x)
        return out


class FeatureListNet(_FeatureNet):
    """The feature maps as a list, shallowest first (timm's ``features_only=True``)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._collect(x)


class FeatureDictNet(_FeatureNet):
    """The feature maps in an ordered dict under ``names`` (one per out index, shallowest first),
    as torchvision's ``IntermediateLayerGetter`` hands them to its segmentation and FPN heads."""

    def __init__(self, model: ResNetBase, out_indices: Sequence[int], names: Sequence[str]):
        super().__init__(model, out_indices)
        if len(names) != len(self.out_indices):
            raise ValueError(f"{len(names)} names for {len(self.out_indices)} feature levels")
        self.names = tuple(names)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(zip(self.names, self._collect(x), strict=True))
