"""Shattered gradients (Balduzzi et al. 2017, "The Shattered Gradients Problem", arXiv:1702.08591):
along a line of inputs, the gradient of a deep plain net's output w.r.t. its input decorrelates
into white noise, while a ResNet's stays correlated between neighbouring inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models import ResNetBase
from .inputs import in_chans, input_line, model_device
from .state import bn_calibrated, preserved_state

# Eval-mode samples are independent, so chunking only bounds memory; the result is the same.
_CHUNK = 64


@dataclass
class GradientCorrelation:
    """Autocorrelation of the input gradients along the line, at lags 0..max_lag (lag 0 is 1).
    This is also the decay of the gradients' covariance matrix away from its diagonal: white noise
    gives ~0 at every lag >= 1, Brownian noise decays slowly (Balduzzi et al. 2017, Figs. 1-2)."""

    autocorrelation: list[float]
    n_points: int
    span: float

    @property
    def lag1(self) -> float:
        return self.autocorrelation[1]


def input_gradients(model: nn.Module, inputs: torch.Tensor, projection: torch.Tensor | int) -> torch.Tensor:
    """d(output)/d(input) for each input, output = ``logits @ projection`` or, for an int, that one
    logit. Call on an eval-mode model: in train mode BN mixes the samples' gradients."""
    grads = []
    for chunk in inputs.split(_CHUNK):
        x = chunk.detach().requires_grad_(True)
        logits = model(x)
        out = logits[:, projection] if isinstance(projection, int) else logits @ projection.to(logits)
        grads.append(torch.autograd.grad(out.sum(), x)[0])
    return torch.cat(grads)


def autocorrelation(grads: torch.Tensor, max_lag: int) -> list[float]:
    """Normalized autocorrelation of a sequence of gradients (one per row after flattening), each
    input coordinate centred over the sequence: sum_i <g_i, g_i+k> / sum_i <g_i, g_i>."""
    g = grads.flatten(1).double()
    g = g - g.mean(0, keepdim=True)
    total = (g * g).sum()
    if total == 0:
        raise ValueError("gradients are constant along the line: autocorrelation is undefined")
    lags = range(min(max_lag, len(g) - 1) + 1)
    return [1.0 if k == 0 else float((g[:-k] * g[k:]).sum() / total) for k in lags]


def gradient_correlation(
    model: ResNetBase,
    endpoints: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    n_points: int = 256,
    span: float = 1.0,
    image_size: int = 32,
    max_lag: int = 32,
    target: int | None = None,
    seed: int = 0,
    recalibrate_bn: bool = True,
) -> GradientCorrelation:
    """Input-gradient autocorrelation along ``n_points`` images from one endpoint towards the other.

    ``endpoints``: two images (C, H, W); by default two N(0, 1) images of ``image_size``. ``target``:
    a class whose logit is the output; by default a fixed N(0, 1) projection of the logits.
    ``recalibrate_bn``: normalize with the line's own statistics, as train-mode BN would (needed
    at initialization); False keeps the model's running statistics (a trained model). The model
    itself is never changed.
    """
    gen = torch.Generator().manual_seed(seed)
    if endpoints is None:
        shape = (in_chans(model), image_size, image_size)
        endpoints = (torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))
    line = input_line(*endpoints, n_points, span).to(model_device(model))
    projection = torch.randn(model.num_classes, generator=gen) if target is None else target
    if recalibrate_bn:
        grads = input_gradients(bn_calibrated(model, line), line, projection)
    else:
        with preserved_state(model, train=False):
            grads = input_gradients(model, line, projection)
    return GradientCorrelation(autocorrelation(grads, max_lag), n_points, span)
