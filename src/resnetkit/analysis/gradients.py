"""Gradient flow at initialization: per-layer gradient norms after one backward pass, and the
plain-versus-residual comparison of He et al. 2015 (arXiv:1512.03385, Fig. 6's nets) at init."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..models import ResNetBase, create_model
from .inputs import model_device, random_batch
from .shattered import GradientCorrelation, gradient_correlation
from .state import preserved_state
from .units import is_residual


@dataclass
class LayerGradient:
    name: str
    depth: int  # position of the conv in forward order
    norm: float  # L2 norm of d(loss)/d(weight)


def _forward_recording_convs(
    model: ResNetBase, images: torch.Tensor
) -> tuple[torch.Tensor, list[tuple[str, nn.Conv2d]]]:
    names = {id(m): n for n, m in model.named_modules()}
    order: dict[int, tuple[str, nn.Conv2d]] = {}

    def record(module, args, out):
        order.setdefault(id(module), (names[id(module)], module))

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        logits = model(images)
    finally:
        for h in handles:
            h.remove()
    return logits, list(order.values())


def layer_gradients(
    model: ResNetBase,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    *,
    batch_size: int = 16,
    image_size: int = 32,
    seed: int = 0,
    train: bool = True,
) -> list[LayerGradient]:
    """L2 norm of the cross-entropy gradient of every conv weight, in forward order.

    Without ``images``: a batch of N(0, 1) images and random labels drawn from ``seed``. ``train``:
    BN normalizes with the batch's statistics, as in the first training step. The model's modes,
    buffers and ``.grad`` are left as they were.
    """
    if images is None:
        images, labels = random_batch(model, batch_size, image_size, torch.Generator().manual_seed(seed))
    elif labels is None:
        raise ValueError("layer_gradients: labels are required with images")
    device = model_device(model)
    with preserved_state(model, train=train):
        logits, convs = _forward_recording_convs(model, images.to(device))
        frozen = [name for name, conv in convs if not conv.weight.requires_grad]
        if frozen:
            raise ValueError(f"conv weights without requires_grad have no gradient: {', '.join(frozen)}")
        loss = F.cross_entropy(logits, labels.to(device))
        grads = torch.autograd.grad(loss, [conv.weight for _, conv in convs])
    return [LayerGradient(name, i, float(g.norm())) for i, ((name, _), g) in enumerate(zip(convs, grads, strict=True))]


def gradient_spread(norms: Iterable[float | LayerGradient]) -> float:
    """Largest / smallest per-layer gradient norm: 1 when every layer learns at the same pace."""
    values = [n.norm if isinstance(n, LayerGradient) else float(n) for n in norms]
    if not values:
        raise ValueError("gradient_spread of no layers")
    smallest = min(values)
    return max(values) / smallest if smallest > 0 else float("inf")


@dataclass
class GradientProbe:
    """What every model of a comparison is probed with."""

    batch_size: int = 16
    image_size: int = 32
    n_points: int = 256  # points on the line of inputs for the gradient correlation
    span: float = 1.0
    max_lag: int = 32


@dataclass
class ModelGradients:
    model: str
    residual: bool
    layers: list[LayerGradient]
    spread: float
    correlation: GradientCorrelation
    trained: bool = False  # measured on a trained model and a real batch, not at initialization

    @property
    def first_to_last(self) -> float:
        """First conv's gradient norm over the last conv's: >> 1 when early layers get the larger updates."""
        return self.layers[0].norm / self.layers[-1].norm if self.layers[-1].norm > 0 else float("inf")


@dataclass
class GradientComparison:
    norm: bool
    seed: int
    probe: GradientProbe
    models: list[ModelGradients] = field(default_factory=list)


def _no_norm(num_channels: int) -> nn.Module:
    return nn.Identity()


def model_at_init(name: str, norm: bool = True) -> ResNetBase:
    """A freshly built registered model; ``norm=False`` replaces every BN by an identity."""
    return create_model(name) if norm else create_model(name, norm_layer=_no_norm)


def measure_gradients(
    model: ResNetBase,
    label: str,
    probe: GradientProbe | None = None,
    seed: int = 0,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> ModelGradients:
    """Layer gradient norms and input-gradient correlation of one model.

    Without ``batch``: at initialization, on N(0, 1) images and random labels, BN normalizing with
    the probe's own statistics. With a real ``batch`` (images, labels) of a trained model: the
    layer norms on that batch in train mode (as a training step sees them), and the correlation
    along the line between its first two images with the model's running BN statistics.
    """
    probe = probe or GradientProbe()
    if batch is None:
        layers = layer_gradients(model, batch_size=probe.batch_size, image_size=probe.image_size, seed=seed)
        corr = gradient_correlation(
            model,
            n_points=probe.n_points,
            span=probe.span,
            image_size=probe.image_size,
            max_lag=probe.max_lag,
            seed=seed,
        )
    else:
        images, labels = batch
        if len(images) < 2:
            raise ValueError("a real batch needs at least 2 images (the ends of the input line)")
        layers = layer_gradients(model, images, labels)
        corr = gradient_correlation(
            model,
            (images[0], images[1]),
            n_points=probe.n_points,
            span=probe.span,
            max_lag=probe.max_lag,
            seed=seed,
            recalibrate_bn=False,
        )
    return ModelGradients(label, is_residual(model), layers, gradient_spread(layers), corr, trained=batch is not None)


def compare_gradients(
    names: Sequence[str] = ("plain20", "resnet20", "plain56", "resnet56", "plain110", "resnet110"),
    norm: bool = True,
    seed: int = 0,
    probe: GradientProbe | None = None,
) -> GradientComparison:
    """Build each model at initialization and measure its layer gradients and gradient correlation.

    Every model is built from the same seed, so a plain net and its ResNet twin start with the same
    conv weights (option-A shortcuts have none): the shortcuts are the only difference. ``norm=False``
    replaces every BN by an identity. The global RNG is left as it was.
    """
    probe = probe or GradientProbe()
    result = GradientComparison(norm=norm, seed=seed, probe=probe)
    for name in names:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = model_at_init(name, norm)
            result.models.append(measure_gradients(model, name, probe, seed))
    return result
