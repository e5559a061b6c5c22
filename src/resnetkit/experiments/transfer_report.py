"""The transfer study's artifacts: results.csv (one row per run), summary.csv (mean and spread per
cell), accuracy.png (top-1 against labels per class, log axis) and report.md."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write_text
from .transfer import METHODS, summarize

ROW_KEYS = ("study", "labels_per_class", "method", "seed", "top1", "train_images", "classes", "steps", "seconds", "run")
LABELS = {
    "scratch": "from scratch",
    "linear-probe": "linear probe",
    "finetune": "fine-tune",
    "lp-ft": "LP-FT",
    "knn": "k-NN on embeddings",
}


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike[str], keys: tuple[str, ...] | None = None) -> Path:
    keys = keys or tuple(rows[0])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, text.getvalue())


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        k = r["labels_per_class"]
        r["labels_per_class"] = k if k == "all" else int(k)
        r["seed"], r["top1"] = int(r["seed"]), float(r["top1"])
    return rows


def _x(k: int | str, all_at: float) -> float:
    return all_at if k == "all" else float(k)


def plot_accuracy(summary: list[dict[str, Any]], path: Path, full: dict[str, int]) -> Path:
    """One panel per study: mean top-1 with a band of one standard deviation, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = list(dict.fromkeys(s["study"] for s in summary))
    fig, axes = plt.subplots(1, len(studies), figsize=(5.5 * len(studies), 4.2), squeeze=False)
    for ax, study in zip(axes[0], studies, strict=True):
        cells = [s for s in summary if s["study"] == study]
        all_at = full.get(study, 1000)
        for method in METHODS:
            pts = sorted(
                (_x(s["labels_per_class"], all_at), s["mean"], s["std"]) for s in cells if s["method"] == method
            )
            if not pts:
                continue
            xs, ys, sd = zip(*pts, strict=True)
            ax.plot(xs, [100 * y for y in ys], marker="o", label=LABELS[method])
            ax.fill_between(
                xs,
                [100 * (y - e) for y, e in zip(ys, sd, strict=True)],
                [100 * (y + e) for y, e in zip(ys, sd, strict=True)],
                alpha=0.15,
            )
        ax.set_xscale("log")
        ticks = sorted({_x(s["labels_per_class"], all_at) for s in cells})
        ax.set_xticks(ticks, [f"all ({int(t)})" if t == all_at else str(int(t)) for t in ticks])
        ax.set_xlabel("labelled training images per class (log)")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(study)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_results(rows: list[dict[str, Any]], out: str | os.PathLike[str]) -> dict[str, Path]:
    out = Path(out)
    summary = summarize(rows)
    full = {}
    for r in rows:
        if r["labels_per_class"] == "all" and r["method"] == "scratch":
            full[r["study"]] = (
                int(r["train_images"]) // 5 if r["study"] == "new-classes" else int(r["train_images"]) // 10
            )
    return {
        "results": write_csv(rows, out / "results.csv", ROW_KEYS),
        "summary": write_csv(summary, out / "summary.csv"),
        "plot": plot_accuracy(summary, out / "accuracy.png", full),
    }
