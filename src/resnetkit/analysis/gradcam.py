"""Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): where in the image a layer's features
speak for a class."""

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
class GradCAM:
    heatmaps: torch.Tensor  # (N, H, W) at the input resolution, each scaled so its peak is 1
    classes: list[int]
    scores: list[float]  # the explained logit of each image
    layer: str

    def __getitem__(self, index: int) -> GradCAM:
        """The map of one image, as a GradCAM of one."""
        i = range(len(self.classes))[index]
        return GradCAM(self.heatmaps[i : i + 1], [self.classes[i]], [self.scores[i]], self.layer)


def _layer(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        stages = ", ".join(f["module"] for f in getattr(model, "feature_info", []))
        raise ValueError(f"no layer {name!r} in {type(model).__name__}; its feature levels are {stages}") from None


def _targets(classes: int | Sequence[int] | None, logits: torch.Tensor) -> torch.Tensor:
    if classes is None:
        return logits.argmax(1)
    target = torch.as_tensor(classes, dtype=torch.long, device=logits.device)
    bad = [c for c in target.flatten().tolist() if not 0 <= c < logits.shape[1]]
    if bad:
        raise ValueError(f"class {bad[0]} does not exist: the model predicts classes 0..{logits.shape[1] - 1}")
    if target.ndim == 1 and len(target) != len(logits):
        raise ValueError(f"{len(target)} classes for {len(logits)} images")
    return target.expand(len(logits))


def grad_cam(
    model: ResNetBase,
    images: torch.Tensor,
    target_layer: str | None = None,
    classes: int | Sequence[int] | None = None,
) -> GradCAM:
    """Grad-CAM maps of ``images`` (N, C, H, W) for ``classes`` (one for all, one per image, or the
    predicted ones) at ``target_layer`` (default: the last stage, ``model.feature_info[-1]``).
    Runs in eval mode; the model's modes, hooks and ``.grad`` are left as they were."""
    name = target_layer or model.feature_info[-1]["module"]
    layer = _layer(model, name)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, args, out: captured.append(out))
    # An input that requires grad makes the activations require it even when the weights are frozen.
    x = images.to(model_device(model)).detach().requires_grad_(True)
    with preserved_state(model, train=False):
        try:
            logits = model(x)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(
                f"layer {name!r} ran {len(captured)} times in the forward pass; Grad-CAM needs exactly one"
            )
        acts = captured[0]
        target = _targets(classes, logits)
        scores = logits.gather(1, target[:, None]).squeeze(1)
        # Samples are independent in eval mode, so one backward of the sum gives each image its own gradient.
        grads = torch.autograd.grad(scores.sum(), acts)[0]
    weights = grads.mean(dim=(2, 3), keepdim=True)  # eq. 1: global-average-pooled gradients
    cam = F.relu((weights * acts.detach()).sum(1, keepdim=True))  # eq. 2: only features that raise the score
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    peak = cam.flatten(1).amax(1).view(-1, 1, 1)
    return GradCAM(
        heatmaps=(cam / torch.where(peak > 0, peak, torch.ones_like(peak))).cpu(),
        classes=target.tolist(),
        scores=scores.detach().cpu().tolist(),
        layer=name,
    )
