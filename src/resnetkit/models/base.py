"""What every resnetkit model shares: one skeleton (stem, stages, head) built from keyword
arguments, and the downstream interface (timm's forward_features / forward_head /
reset_classifier / feature_info)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from .blocks import ResidualUnit
from .layers import LayerFn, get_act_layer, get_norm_layer, make_shortcut
from .ops import OPS_2D, Ops, get_ops
from .stage import Stage, set_grad_checkpointing
from .stem import stem_layers
from .whitening import PatchWhitening


class FeatureInfo(list[dict[str, Any]]):
    """One dict per feature level: ``num_chs``, ``reduction`` (stride w.r.t. the input), ``module``
    (the child whose output it is)."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]


@dataclass
class StagePlan:
    stages: list[nn.Sequential] = field(default_factory=list)
    feature_info: FeatureInfo = field(default_factory=FeatureInfo)
    out_chs: int = 0


def build_stages(
    block: type[ResidualUnit],
    layers: Sequence[int],
    channels: Sequence[int],
    *,
    in_chs: int,
    stem_stride: int,
    shortcut: str | None,
    shortcut_norm: LayerFn | None,
    avg_down: bool,
    output_stride: int | None,
    drop_path_rate: float,
    block_kwargs: dict[str, Any],
    stage_stride: int = 2,
    ops: Ops = OPS_2D,
) -> StagePlan:
    """Stages of ``layers[i]`` blocks; every stage after the first halves the resolution, unless
    ``output_stride`` asks to keep it, in which case the stride becomes dilation (as in DeepLab,
    Chen et al. 2017) so a segmentation head sees denser features with the same weights.
    ``stage_stride=1`` keeps the full resolution throughout (Wang et al. 2017's time-series ResNet)."""
    if len(layers) != len(channels):
        raise ValueError(f"layers {tuple(layers)} and channels {tuple(channels)} must have the same length")
    if output_stride is not None and (output_stride < stem_stride or output_stride & (output_stride - 1)):
        raise ValueError(f"output_stride={output_stride}: must be a power of two >= the stem stride ({stem_stride})")
    plan = StagePlan()
    total_blocks, block_idx = sum(layers), 0
    net_stride, dilation = stem_stride, 1
    for stage_idx, (num_blocks, planes) in enumerate(zip(layers, channels, strict=True)):
        stride = 1 if stage_idx == 0 else stage_stride
        first_dilation = dilation
        if output_stride is not None and net_stride * stride > output_stride:
            dilation, stride = dilation * stride, 1
        else:
            net_stride *= stride
        out_chs = planes * block.expansion
        blocks = []
        for i in range(num_blocks):
            s = stride if i == 0 else 1
            residual, downsample = make_shortcut(
                shortcut, in_chs, out_chs, s, shortcut_norm, avg_down, ops=ops, bias=block.conv_bias
            )
            # Stochastic depth's linear decay rule (Huang et al. 2016, §3): deeper blocks drop more.
            dpr = drop_path_rate * block_idx / max(total_blocks - 1, 1)
            blocks.append(
                block(
                    in_chs,
                    planes,
                    stride=s,
                    downsample=downsample,
                    residual=residual,
                    dilation=dilation,
                    first_dilation=first_dilation if i == 0 else dilation,
                    drop_path=dpr,
                    ops=ops,
                    **block_kwargs,
                )
            )
            in_chs, block_idx = out_chs, block_idx + 1
        plan.stages.append(Stage(*blocks))
        plan.feature_info.append({"num_chs": out_chs, "reduction": net_stride, "module": f"layer{stage_idx + 1}"})
    plan.out_chs = in_chs
    return plan


class ResNetBase(nn.Module):
    """One skeleton for every family: stem, stages ``layer1..N``, (pre-activation nets) a final
    norm and activation, then the head. ``build`` assembles it from keyword arguments; the family
    classes only choose their defaults. This is also the interface downstream tools use."""

    num_classes: int
    num_features: int
    feature_info: FeatureInfo
    first_conv: str = "conv1"
    classifier: str = "fc"
    spatial_dims: int = 2  # 1: a sequence model (Conv1d ...)
    vocab_size: int | None = None  # a byte model: its input is symbols, embedded first
    # Set by create_model: how to rebuild the model, and what its weights were trained on.
    model_cfg: dict[str, Any]
    pretrained_cfg: dict[str, Any]

    def build(
        self,
        *,
        block: type[ResidualUnit],
        layers: Sequence[int],
        num_classes: int,
        in_chans: int,
        channels: Sequence[int],
        stem_type: str,
        stem_width: int,
        stem_chs: int | None,
        shortcut: str | None,
        avg_down: bool,
        groups: int,
        width_per_group: int,
        output_stride: int | None,
        drop_rate: float,
        drop_path_rate: float,
        zero_init_residual: bool,
        norm_layer: str | LayerFn,
        act_layer: str | LayerFn,
        preact: bool,
        block_kwargs: dict[str, Any] | None = None,
        spatial_dims: int = 2,
        stage_stride: int = 2,
        vocab_size: int | None = None,
        embed_dim: int = 16,
    ) -> None:
        """``preact``: BN-ReLU before each conv (He et al. 2016), so the stem and projection
        shortcuts carry no norm of their own and a final BN-ReLU (``norm``, ``act``) normalizes
        the last sum before the head. ``spatial_dims``: 2 for images, 1 for sequences (the same
        net with Conv1d, BatchNorm1d and 1-D pools); ``vocab_size``: a 1-D net over byte values,
        embedded first (``stem.ByteEmbedding``)."""
        ops = get_ops(spatial_dims)
        if vocab_size is not None and (spatial_dims != 1 or in_chans != 1 or not 1 <= vocab_size <= 65536):
            raise ValueError(
                f"vocab_size={vocab_size}: a byte model is 1-D over one channel of symbols "
                f"(spatial_dims=1, in_chans=1), not spatial_dims={spatial_dims}, in_chans={in_chans}"
            )
        self.spatial_dims, self.vocab_size = spatial_dims, vocab_size
        norm, act = get_norm_layer(norm_layer, ops), get_act_layer(act_layer)
        self.first_conv = {"deep": "conv1.0", "none": "layer1.0.conv1"}.get(stem_type, "conv1")
        stem, stem_stride, stem_info = stem_layers(
            stem_type,
            in_chans,
            stem_chs or channels[0],
            stem_width,
            None if preact else norm,
            act,
            ops,
            vocab_size,
            embed_dim,
        )
        for name, module in stem.items():
            self.add_module(name, module)
        self.stem_names = tuple(stem)
        plan = build_stages(
            block,
            layers,
            channels,
            in_chs=stem_info["num_chs"],
            stem_stride=stem_stride,
            shortcut=shortcut,
            shortcut_norm=None if preact else norm,
            avg_down=avg_down,
            output_stride=output_stride,
            drop_path_rate=drop_path_rate,
            block_kwargs={
                "groups": groups,
                "base_width": width_per_group,
                "norm_layer": norm,
                "act_layer": act,
                **(block_kwargs or {}),
            },
            stage_stride=stage_stride,
            ops=ops,
        )
        self.stage_names = tuple(f"layer{i + 1}" for i in range(len(plan.stages)))
        for name, stage in zip(self.stage_names, plan.stages, strict=True):
            self.add_module(name, stage)
        self.num_features = plan.out_chs
        self.tail_names: tuple[str, ...] = ()
        if preact:
            self.norm = norm(self.num_features)
            self.act = act()
            self.tail_names = ("norm", "act")
            # The last stage's feature is taken after the final BN-ReLU, the only normalized one.
            plan.feature_info[-1] = dict(plan.feature_info[-1], module="act")
        self.feature_info = FeatureInfo([stem_info, *plan.feature_info])
        self.num_classes = num_classes
        self.global_pool = nn.Sequential(ops.adaptive_avg_pool(1), nn.Flatten(1))
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)
        self.init_weights(zero_init_residual)

    @property
    def in_chans(self) -> int:
        """Input channels, read from the first conv (``first_conv``); a byte model's is 1."""
        if "embed" in self.stem_names:
            return 1
        conv = self.get_submodule(self.first_conv)
        assert isinstance(conv, (nn.Conv1d, nn.Conv2d, PatchWhitening))
        return conv.in_channels

    def trunk(self) -> list[tuple[str, nn.Module]]:
        """The modules ``forward_features`` runs, in its order: stem, stages, final norm."""
        return [(name, self.get_submodule(name)) for name in (*self.stem_names, *self.stage_names, *self.tail_names)]

    def stages(self) -> list[nn.Sequential]:
        return [cast(nn.Sequential, self.get_submodule(name)) for name in self.stage_names]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem_names:  # conv1 [bn1 act1] [maxpool], as the stem built them
            x = self.get_submodule(name)(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for stage in self.stages():
            x = stage(x)
        if self.tail_names:  # pre-activation: BN-ReLU of the last sum
            x = self.act(self.norm(x))
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def set_grad_checkpointing(self, enable: bool = True, every: int | None = None, *, reentrant: bool = False) -> None:
        """Activation checkpointing in every stage (timm's name), segments of ``every`` units or
        about sqrt(units in the stage) (``models/stage.py`` says why)."""
        set_grad_checkpointing(self, enable, every, reentrant=reentrant)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for ``num_classes`` (0 removes it: the model returns pooled features)."""
        self.num_classes = num_classes
        self.fc: nn.Module = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def blocks(self) -> list[ResidualUnit]:
        """All residual units in forward order."""
        return [cast(ResidualUnit, unit) for stage in self.stages() for unit in stage]

    def zero_init_last(self) -> None:
        # Each unit starts as an identity (Goyal et al. 2017, arXiv:1706.02677, §5.1).
        for b in self.blocks():
            weight = getattr(b.branch_out, "weight", None)
            if b.residual and isinstance(weight, torch.Tensor):
                nn.init.zeros_(weight)

    def init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            self.zero_init_last()


Parts = list[tuple[str, list[nn.Module]]]


def trunk_parts(net: nn.Module) -> Parts:
    """(part, modules) of a classifier's trunk or of a ``features_only`` backbone made from one,
    from the input up: ``stem``, then the stages ``layer1`` .. ``layerN`` (a pre-activation net's
    final norm belongs to the last): what transfer learning freezes and gives learning rates."""
    names: dict[str, tuple[str, ...]] = {k: getattr(net, k, ()) for k in ("stem_names", "stage_names", "tail_names")}
    if not names["stage_names"]:
        raise ValueError(f"a {type(net).__name__} has no stem and stages to freeze or schedule")
    stages = [net.get_submodule(name) for name in names["stage_names"]]
    tail = [net.get_submodule(name) for name in names["tail_names"]]
    parts: Parts = [("stem", [net.get_submodule(n) for n in names["stem_names"]])]
    for i, (name, stage) in enumerate(zip(names["stage_names"], stages, strict=True)):
        parts.append((name, [stage, *tail] if i == len(stages) - 1 else [stage]))
    return parts
