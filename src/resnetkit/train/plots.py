"""PNG plots of a run and of an evaluation. Figures are built without pyplot, so importing
resnetkit never changes a notebook's backend and no global figure state is touched."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def plot_curves(rows: list[dict], path: Path, step_rows: list[dict] | None = None) -> Path:
    """Loss, error (the paper's axis) and learning rate against epochs: training every
    ``log_every`` steps when ``step_rows`` are given (else per epoch), evaluation per epoch."""
    train = step_rows or rows
    t_epochs, epochs = [r["epoch"] for r in train], [r["epoch"] for r in rows]
    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ax.plot(t_epochs, [r["train_loss"] for r in train], label="train", linewidth=1)
    if rows and rows[0].get("eval_loss") is not None:
        ax.plot(epochs, [r["eval_loss"] for r in rows], "o-", markersize=3, label="eval")
    ax.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    ax.legend()
    ax = axes[1]
    ax.plot(t_epochs, [100 * (1 - r["train_top1"]) for r in train], label="train (augmented)", linewidth=1)
    if rows and rows[0].get("eval_top1") is not None:
        ax.plot(epochs, [100 * (1 - r["eval_top1"]) for r in rows], "o-", markersize=3, label="eval")
        best = min(rows, key=lambda r: 1 - r["eval_top1"])
        ax.annotate(f"best {100 * best['eval_top1']:.2f}% acc", (best["epoch"], 100 * (1 - best["eval_top1"])),
                    textcoords="offset points", xytext=(-60, 20), arrowprops=dict(arrowstyle="->"))
    ax.set(title="top-1 error", xlabel="epoch", ylabel="error (%)")
    ax.set_yscale("log")
    ax.legend()
    ax = axes[2]
    ax.plot(t_epochs, [r["lr"] for r in train])
    ax.set(title="learning rate", xlabel="epoch", ylabel="lr")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_confusion(confusion, classes: list[str], path: Path, title: str = "") -> Path:
    import numpy as np

    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig = Figure(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion (row-normalized)")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
