"""The residual units of a model, by qualified name."""

from __future__ import annotations

from ..models import ResidualUnit, ResNetBase


def named_units(model: ResNetBase) -> list[tuple[str, ResidualUnit]]:
    """``model.blocks()`` in forward order, each with its name in ``model.named_modules()`` (``layer2.0``)."""
    names = {id(m): name for name, m in model.named_modules()}
    return [(names[id(b)], b) for b in model.blocks()]


def is_residual(model: ResNetBase) -> bool:
    """False for the plain twins, whose units have no shortcut."""
    return any(b.residual for b in model.blocks())
