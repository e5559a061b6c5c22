"""Size and cost of a model: parameters, multiply-accumulates (PyTorch's own FLOP counter) and
depth in weighted layers as the papers count it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .factory import create_model


@dataclass
class ModelProfile:
    name: str
    params: int
    gmacs: float
    depth: int
    image_size: int
    in_chans: int
    num_classes: int

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, image_size: int, in_chans: int = 3) -> int:
    """Multiply-accumulates of one forward pass on one image (FLOPs / 2, the convention of the
    ResNet paper's Table 1 and torchvision's GFLOPS metadata), or on one sequence of
    ``image_size`` steps for a 1-D model. Works on meta-device models."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        dims, symbols = getattr(model, "spatial_dims", 2), getattr(model, "vocab_size", None) is not None
        dtype = torch.long if symbols else torch.float32
        model(torch.zeros(1, in_chans, *(image_size,) * dims, device=device, dtype=dtype))
    model.train(was_training)
    return counter.get_total_flops() // 2


def weighted_depth(model: nn.Module) -> int:
    """Convs and fully-connected layers on the longest path, shortcut projections excluded: the
    count that names ResNet-50 and ResNet-110. Wide ResNets are named by their authors' own rule
    (6n+4), which also counts shortcut projections, so wrn28_10 reports 26 here."""
    return sum(
        1
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and ".downsample" not in f".{name}"
    )


def default_image_size(name: str) -> int:
    """32 for CIFAR-layout models (3x3 stem), 224 for ImageNet-layout ones."""
    with torch.device("meta"):
        model = create_model(name)
    return 32 if model.feature_info[0]["reduction"] == 1 else 224


def profile_model(name: str, image_size: int | None = None, in_chans: int | None = None) -> ModelProfile:
    """Profile a registered model; it is built on the meta device, so nothing is allocated or computed."""
    with torch.device("meta"):
        model = create_model(name, in_chans=in_chans)
    in_chans = model.in_chans  # None given: the model's own (3 for images, 1 for a series or a text)
    size = image_size or default_image_size(name)
    return ModelProfile(
        name=name,
        params=count_params(model),
        gmacs=count_macs(model, size, in_chans) / 1e9,
        depth=weighted_depth(model),
        image_size=size,
        in_chans=in_chans,
        num_classes=model.num_classes,
    )
