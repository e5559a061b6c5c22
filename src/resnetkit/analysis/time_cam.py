"""Class activation maps over time (Wang, Yan & Oates 2017, arXiv:1611.06455, §2.4 and Fig. 4;
after Zhou et al. 2016's CAM): a 1-D ResNet ends in global average pooling and a linear layer,
so a class's logit is the time average of M_c(t) = sum_k w_k^c A_k(t), A the last features and
w the head's weights (plus the head's bias). M_c says which steps of the series (or bytes of
a text) spoke for class c. No gradients are needed, unlike Grad-CAM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import ResNetBase
from .inputs import model_device
from .state import preserved_state


@dataclass
class TimeCAM:
    """``maps[i]`` (L_i,): the map of sequence i at its input's steps (interpolated linearly where
    the features are shorter than the input); ``raw[i]`` at the features' own steps, whose mean
    plus ``bias[i]`` is the logit ``scores[i]`` exactly."""

    maps: list[torch.Tensor]
    raw: list[torch.Tensor]
    classes: list[int]
    scores: list[float]
    bias: list[float]


@torch.no_grad()
def class_activation_map(
    model: ResNetBase, inputs: Sequence[torch.Tensor], classes: int | Sequence[int] | None = None
) -> TimeCAM:
    """The CAM of each input (C, L) for ``classes`` (one for all, one per input, or the predicted
    ones). Sequences of different lengths are run one by one; the model's mode is left as it was."""
    head = model.get_classifier()
    if getattr(model, "spatial_dims", 2) != 1 or not isinstance(head, nn.Linear):
        raise ValueError("a class activation map over time needs a 1-D model with a linear head")
    if isinstance(classes, Sequence) and len(classes) != len(inputs):
        raise ValueError(f"{len(classes)} classes for {len(inputs)} sequences")
    out = TimeCAM([], [], [], [], [])
    with preserved_state(model, train=False):
        for i, x in enumerate(inputs):
            features = model.forward_features(x[None].to(model_device(model)))[0].float()  # (K, T)
            logits = model.forward_head(features[None])[0].float()
            c = int(logits.argmax()) if classes is None else int(classes if isinstance(classes, int) else classes[i])
            if not 0 <= c < len(logits):
                raise ValueError(f"class {c} does not exist: the model predicts classes 0..{len(logits) - 1}")
            raw = head.weight[c].float() @ features  # (T,)
            full = F.interpolate(raw[None, None], size=int(x.shape[-1]), mode="linear", align_corners=False)[0, 0]
            out.maps.append(full.cpu())
            out.raw.append(raw.cpu())
            out.classes.append(c)
            out.scores.append(float(logits[c]))
            out.bias.append(float(head.bias[c]) if head.bias is not None else 0.0)
    return out
