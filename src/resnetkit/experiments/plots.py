"""The degradation experiment's figure, in the paper's conventions (He et al. 2015, Figs. 1 and 6)."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from ..analysis.plots import DepthColours, line_style, save_figure
from .degradation import DegradationResult


def plot_degradation(result: DegradationResult, path: str | os.PathLike) -> Path:
    """He et al. 2015 Figs. 1 and 6: training error (left) and test error (right) against
    iterations, plain nets dashed and ResNets solid, one colour per depth."""
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    train_ax, test_ax = fig.subplots(1, 2, sharey=True)
    colour = DepthColours()
    for run in result.runs:
        c, style = colour(run.depth), line_style(run.residual)
        for ax, curve in ((train_ax, run.train_curve), (test_ax, run.test_curve)):
            if curve:
                steps, err = zip(*curve, strict=True)
                ax.plot(steps, [100 * e for e in err], color=c, label=f"{run.model} ({100 * err[-1]:.2f}%)", **style)
    # Zoom on where the nets end (the first iterations, near chance, would flatten everything else), as Fig. 6 does.
    top = min(100.0, 250 * max(max(r.final_train_error, r.final_test_error) for r in result.runs))
    for ax, what in ((train_ax, "training error (augmented, train mode)"), (test_ax, "test error")):
        ax.set(xlabel="iteration", title=what, ylim=(0, top))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    train_ax.set_ylabel("error (%)")
    fig.suptitle(
        f"Degradation on {result.data}: dashed = plain, solid = ResNet ({result.recipe} recipe, "
        f"{result.epochs} epochs, seed {result.seed})"
    )
    return save_figure(fig, path)
