"""PNG plots of an evaluation. Figures are built without pyplot, so no global backend or figure
state is touched."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure


def plot_confusion(confusion: Sequence[Sequence[int]], classes: list[str], path: Path, title: str = "") -> Path:
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
                    ax.text(
                        j,
                        i,
                        str(int(cm[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
