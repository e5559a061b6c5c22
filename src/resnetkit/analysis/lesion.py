"""Lesion study (Veit et al. 2016, "Residual networks behave like ensembles of relatively shallow
networks", arXiv:1605.06431, §4): remove one unit at a time, keeping its shortcut, and measure the
test accuracy. A ResNet degrades gracefully (except where a unit downsamples); a plain net collapses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ..models import ResidualUnit, ResNetBase
from .inputs import model_device
from .state import preserved_state
from .units import is_residual, named_units

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class UnitLesion:
    unit: str
    index: int
    accuracy: float | None = None
    drop: float | None = None  # baseline accuracy minus accuracy without the unit
    skipped: str | None = None  # why the unit could not be removed


@dataclass
class LesionReport:
    baseline: float
    residual: bool
    units: list[UnitLesion] = field(default_factory=list)


def _bypass(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
    assert isinstance(module, ResidualUnit)  # hooked on model.blocks() only
    short = module.forward_shortcut(args[0])
    if short.shape != out.shape:
        raise ValueError(
            f"a unit mapping {tuple(args[0].shape)} to {tuple(out.shape)} without a shortcut cannot be removed"
        )
    return short


@contextmanager
def _removed(model: ResNetBase, indices: Iterable[int]):
    """Each unit in ``indices`` outputs its shortcut path (``forward_shortcut``) instead of its
    sum; removing the hooks restores the model exactly, also when evaluation fails."""
    units = model.blocks()
    handles = [units[i].register_forward_hook(_bypass) for i in indices]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def _check_reiterable(data: Batches) -> None:
    if iter(data) is data:
        raise TypeError("lesion needs data it can iterate over more than once (a list or DataLoader, not a generator)")


def accuracy(model: nn.Module, data: Batches) -> float:
    """Top-1 accuracy over (images, labels) batches, in eval mode (the model's modes are restored)."""
    device, correct, total = model_device(model), 0, 0
    with preserved_state(model, train=False), torch.no_grad():
        for images, labels in data:
            pred = model(images.to(device)).argmax(1)
            correct += int((pred == labels.to(device)).sum())
            total += len(labels)
    if total == 0:
        raise ValueError("accuracy over an empty dataset")
    return correct / total


def accuracy_without(model: ResNetBase, data: Batches, units: Sequence[int]) -> float:
    """Accuracy with the units at these positions of ``model.blocks()`` removed together."""
    with _removed(model, units):
        return accuracy(model, data)


def _reshaping_plain_units(model: ResNetBase, data: Batches) -> set[int]:
    """Units without a shortcut whose output shape differs from their input's: nothing can stand in."""
    units = model.blocks()
    reshaping: set[int] = set()

    def checker(i: int):
        def check(module, args, out):
            if not module.residual and args[0].shape != out.shape:
                reshaping.add(i)

        return check

    images, _ = next(iter(data))
    handles = [u.register_forward_hook(checker(i)) for i, u in enumerate(units)]
    try:
        with preserved_state(model, train=False), torch.no_grad():
            model(images[:1].to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return reshaping


def lesion_study(model: ResNetBase, data: Batches) -> LesionReport:
    """Baseline accuracy, then the accuracy with each unit removed in turn (Veit et al. 2016, Fig. 3)."""
    _check_reiterable(data)
    report = LesionReport(baseline=accuracy(model, data), residual=is_residual(model))
    reshaping = _reshaping_plain_units(model, data)
    for i, (name, _) in enumerate(named_units(model)):
        if i in reshaping:
            report.units.append(UnitLesion(name, i, skipped="changes shape and has no shortcut"))
            continue
        acc = accuracy_without(model, data, [i])
        report.units.append(UnitLesion(name, i, accuracy=acc, drop=report.baseline - acc))
    return report
