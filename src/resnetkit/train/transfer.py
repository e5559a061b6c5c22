"""Transfer learning in the engine: which parts of a model train, at which learning rate, and
whose BatchNorm statistics move.

The parts are the task's (``Task.transfer_parts``), in the model interface's terms: the stem
(``stem_names``), the stages (``stage_names``, plus a pre-activation net's final norm, which
belongs to the last stage) and the head (a classifier's ``classifier``; for a dense model all
around the classifier trunk it is built on, FPN included). A frozen part gets no gradient *and*
stays in eval mode: without the second, its BatchNorm layers keep updating their running
statistics from the new data while its weights stand still, and the frozen features drift
(pytorch/pytorch#86590).

``lp-ft`` is linear probing, then fine-tuning of everything (Kumar et al., "Fine-Tuning can
Distort Pretrained Features and Underperform Out-of-Distribution", ICLR 2022): a head fitted to
the frozen features first means the backbone is not pushed around by a random head's gradients.
Each phase runs its own learning-rate schedule (warmup included) over its own steps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

from ..models import Parts
from .config import OptimConfig, TransferConfig


def frozen_parts(parts: Parts, freeze: str) -> set[str]:
    """The parts ``freeze`` names: none, stem, stageK (the stem and stages 1..K), backbone."""
    names = [name for name, _ in parts]
    if freeze == "none":
        return set()
    if freeze == "stem":
        return {"stem"}
    if freeze == "backbone":
        return set(names[:-1])
    k = int(freeze.removeprefix("stage"))
    stages = len(names) - 2
    if not 1 <= k <= stages:
        raise ValueError(f"--freeze {freeze}: the model has stages 1..{stages}")
    return set(names[: k + 1])


def _params(modules: list[nn.Module]) -> Iterator[nn.Parameter]:
    for module in modules:
        yield from module.parameters()


@dataclass
class TransferPlan:
    """What ``TransferConfig`` means for one model and run: the parts frozen for the whole run,
    those frozen only while linear probing (``lp-ft``), the step at which that phase ends, and
    each part's learning rate."""

    model: nn.Module
    cfg: TransferConfig
    total_steps: int
    parts: Parts  # the task's (``Task.transfer_parts``)

    def __post_init__(self) -> None:
        cfg, all_backbone = self.cfg, frozen_parts(self.parts, "backbone")
        freeze = frozen_parts(self.parts, cfg.freeze)
        self.always = all_backbone if cfg.mode == "linear-probe" else freeze
        self.probe_steps = 0
        if cfg.mode == "lp-ft":
            self.probe_steps = min(max(round(cfg.lp_fraction * self.total_steps), 1), self.total_steps - 1)
            if self.total_steps < 2:
                raise ValueError("transfer.mode=lp-ft: needs at least two steps (one to probe, one to fine-tune)")
        self.probing = all_backbone - self.always if self.probe_steps else set()

    @property
    def phases(self) -> list[int]:
        """Steps at which a new learning-rate schedule starts (after 0)."""
        return [self.probe_steps] if self.probe_steps else []

    def frozen_at(self, step: int) -> set[str]:
        return self.always | (self.probing if step < self.probe_steps else set())

    def freeze_for_good(self) -> None:
        """Parts frozen for the whole run get no gradient and stay out of the optimizer."""
        for name, modules in self.parts:
            if name in self.always:
                for p in _params(modules):
                    p.requires_grad_(False)

    def param_groups(self, optim: OptimConfig, base_lr: float) -> list[dict]:
        """One group per part (and per decay setting), with its own ``lr``: the head's, and the
        backbone's scaled by ``layer_decay`` per stage below the last (ELECTRA / BEiT's layer-wise
        decay). Parts frozen only while probing are in it: they get no gradient until then, and
        optimizers skip parameters without one."""
        cfg = self.cfg
        parts = self.parts
        head_lr = base_lr if cfg.head_lr is None else cfg.head_lr
        backbone_lr = base_lr if cfg.backbone_lr is None else cfg.backbone_lr
        depth = len(parts) - 1  # the stem is this many parts below the head
        groups: list[dict] = []
        for i, (name, modules) in enumerate(parts):
            if name in self.always:
                continue
            lr = head_lr if name == "head" else backbone_lr * (cfg.layer_decay or 1.0) ** (depth - 1 - i)
            params = list(_params(modules))
            if optim.decay_norm_and_bias:
                split = [(params, optim.weight_decay)]
            else:
                split = [
                    ([p for p in params if p.ndim > 1], optim.weight_decay),
                    ([p for p in params if p.ndim <= 1], 0.0),
                ]
            groups += [{"params": ps, "lr": lr, "weight_decay": wd, "part": name} for ps, wd in split if ps]
        return groups

    def apply(self, step: int) -> None:
        """Gradients and modes for ``step`` of a model in train mode: frozen parts get no gradient
        and go to eval mode (their BN statistics fixed) unless ``bn="train"``; with ``bn="eval"``
        every BN layer does. Called when an epoch starts and when probing ends."""
        frozen = self.frozen_at(step)
        for name, modules in self.parts:
            if name not in self.always:
                for p in _params(modules):
                    p.requires_grad_(name not in frozen)
            if name in frozen and self.cfg.bn != "train":
                for module in modules:
                    module.eval()
        if self.cfg.bn == "eval":
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
