"""The ResNet family: registry, builders, blocks and weights."""

from . import dense_zoo, zoo  # noqa: F401  (register every builder)
from .base import FeatureInfo, Parts, ResNetBase, trunk_parts
from .blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ResidualUnit
from .factory import create_model, model_options
from .features import FeatureDictNet, FeatureListNet
from .layers import DropPath, FrozenBatchNorm2d, GroupNorm, PadShortcut, to_channels_last
from .preact import PreActResNet
from .registry import is_model, list_models, list_pretrained, model_task, register_model, trains_for
from .resnet import ResNet
from .stage import Stage, set_grad_checkpointing
from .weights import (
    WeightsError,
    WeightsMismatch,
    adapt_input_conv,
    clean_state_dict,
    guess_architecture,
    load_weights,
    read_state_dict,
)
from .whitening import PatchWhitening, fit_whitening
from .zoo import *  # noqa: F403  (builder functions: resnetkit.models.resnet50(), ...)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "DropPath",
    "FeatureDictNet",
    "FeatureInfo",
    "FeatureListNet",
    "FrozenBatchNorm2d",
    "GroupNorm",
    "PadShortcut",
    "Parts",
    "PatchWhitening",
    "PreActBasicBlock",
    "PreActBottleneck",
    "PreActResNet",
    "ResNet",
    "ResNetBase",
    "ResidualUnit",
    "Stage",
    "WeightsError",
    "WeightsMismatch",
    "adapt_input_conv",
    "clean_state_dict",
    "create_model",
    "fit_whitening",
    "guess_architecture",
    "is_model",
    "list_models",
    "list_pretrained",
    "load_weights",
    "model_options",
    "model_task",
    "read_state_dict",
    "register_model",
    "set_grad_checkpointing",
    "to_channels_last",
    "trains_for",
    "trunk_parts",
]
