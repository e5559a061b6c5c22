"""The residual units of a model, by qualified name."""

from __future__ import annotations

from torch import nn


def named_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``model.blocks()`` in forward order, each with its name in ``model.named_modules()`` (``layer2.0``)."""
    names = {id(m): name for name, m in model.named_modules()}
    return [(names[id(b)], b) for b in model.blocks()]


def is_residual(model: nn.Module) -> bool:
    """False for the plain twins, whose units have no shortcut."""
    return any(b.residual for b in model.blocks())
