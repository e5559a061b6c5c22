"""PNG plots of a run's curves. Figures are built without pyplot, so importing
resnetkit never changes a notebook's backend and no global figure state is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def plot_curves(
    rows: list[dict[str, Any]], path: Path, step_rows: list[dict[str, Any]] | None = None, metric: str = "top1"
) -> Path:
    """Loss, the error of the task's ``metric`` (1 - metric: the paper's axis) and learning rate
    against epochs: training every ``log_every`` steps when ``step_rows`` are given (else per
    epoch), evaluation per epoch where the run evaluated."""
    train = step_rows or rows
    t_epochs, epochs = [r["epoch"] for r in train], [r["epoch"] for r in rows]
    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ax.plot(t_epochs, [r["train_loss"] for r in train], label="train", linewidth=1)
    if rows and rows[0].get("eval_loss") is not None:
        ax.plot(epochs, [r["eval_loss"] for r in rows], "o-", markersize=3, label="eval")
    ax.set(title="loss", xlabel="epoch", ylabel="loss")
    ax.legend()
    ax = axes[1]
    if train and f"train_{metric}" in train[0]:  # a dense task's training steps measure no mIoU or mAP
        ax.plot(t_epochs, [100 * (1 - r[f"train_{metric}"]) for r in train], label="train (augmented)", linewidth=1)
    if rows and rows[0].get(f"eval_{metric}") is not None:
        ax.plot(epochs, [100 * (1 - r[f"eval_{metric}"]) for r in rows], "o-", markersize=3, label="eval")
        last = rows[-1]
        ax.annotate(
            f"final {metric} {100 * last['eval_' + metric]:.2f}%",
            (last["epoch"], 100 * (1 - last["eval_" + metric])),
            textcoords="offset points",
            xytext=(-60, 20),
            arrowprops={"arrowstyle": "->"},
        )
    ax.set(title=f"{metric} error", xlabel="epoch", ylabel="error (%)")
    ax.set_yscale("log")
    if ax.lines:
        ax.legend()
    ax = axes[2]
    ax.plot(t_epochs, [r["lr"] for r in train])
    ax.set(title="learning rate", xlabel="epoch", ylabel="lr")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
