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


def write_results(
    rows: list[dict[str, Any]],
    out: str | os.PathLike[str],
    command: str = "",
    wall_seconds: float | None = None,
    notes: list[str] | None = None,
) -> dict[str, Path]:
    """results.csv, summary.csv, accuracy.png and report.md in ``out``."""
    out = Path(out)
    summary = summarize(rows)
    full = {}
    for r in rows:
        if r["labels_per_class"] == "all" and r["method"] == "scratch":
            full[r["study"]] = int(r["train_images"]) // int(r["classes"])  # "all" sits at its mean per class
    return {
        "results": write_csv(rows, out / "results.csv", ROW_KEYS),
        "summary": write_csv(summary, out / "summary.csv"),
        "plot": plot_accuracy(summary, out / "accuracy.png", full),
        "report": atomic_write_text(out / "report.md", report_text(rows, command, wall_seconds, notes)),
    }


STUDY_TITLES = {
    "new-classes": "New classes, same domain: Fashion-MNIST classes 0-4 pretrain a ResNet-20, classes 5-9 are new",
    "new-classes-plain": "Going further: the same with the plain twin (plain20, no shortcuts), pretrained alike",
    "new-domain": "New domain: the shipped resnet20.fashion_mnist to scikit-learn's 8x8 digits",
}


def paired(rows: list[dict[str, Any]], study: str, k: Any, method: str) -> tuple[int, int]:
    """(seeds where ``method`` beats scratch, seeds compared): each seed draws the same labelled
    images for every method, so the comparison is paired."""
    by = {(r["method"], r["seed"]): r["top1"] for r in rows if r["study"] == study and r["labels_per_class"] == k}
    seeds = [seed for m, seed in by if m == "scratch" and (method, seed) in by]
    return sum(by[(method, seed)] > by[("scratch", seed)] for seed in seeds), len(seeds)


def findings(summary: list[dict[str, Any]], rows: list[dict[str, Any]] | None = None) -> list[str]:
    """Per study and labels per class: the best pretrained method against training from scratch,
    called a gain or a loss where the gap exceeds the two cells' standard deviations summed, or
    (given ``rows``) where it goes the same way on every one of three or more seeds."""
    lines = []
    for study in dict.fromkeys(s["study"] for s in summary):
        cells = {(s["labels_per_class"], s["method"]): s for s in summary if s["study"] == study}
        for k in sorted({key[0] for key in cells}, key=lambda v: float("inf") if v == "all" else float(v)):
            scratch = cells.get((k, "scratch"))
            others = [cells[(k, m)] for m in METHODS if m != "scratch" and (k, m) in cells]
            if scratch is None or not others:
                continue
            best = max(others, key=lambda s: s["mean"])
            gap = 100 * (best["mean"] - scratch["mean"])
            noise = 100 * (best["std"] + scratch["std"])
            wins, n = paired(rows, study, k, best["method"]) if rows is not None else (0, 0)
            # A gain beyond both spreads, or on every seed of three or more (paired: same images).
            helps = gap > noise or (n >= 3 and wins == n and gap > 0)
            hurts = gap < -noise or (n >= 3 and wins == 0 and gap < 0)
            verdict = "helps" if helps else "hurts" if hurts else "makes no clear difference"
            line = (
                f"{study}, {k} label(s) per class: pretraining {verdict}: best pretrained method "
                f"{LABELS[best['method']]} {100 * best['mean']:.1f}% vs from scratch {100 * scratch['mean']:.1f}% "
                f"({gap:+.1f} points; spreads {100 * best['std']:.1f} / {100 * scratch['std']:.1f})"
            )
            if rows is not None:
                line += f"; better on {wins} of {n} seeds"
            lines.append(line)
    return lines


def report_text(
    rows: list[dict[str, Any]], command: str = "", wall_seconds: float | None = None, notes: list[str] | None = None
) -> str:
    summary = summarize(rows)
    out = ["# Transfer learning: where pretraining helps", ""]
    if command:
        out += [f"Command: `{command}`", ""]
    out += [f"- {line}" for line in notes or []] + ([""] if notes else [])
    seconds = sum(float(r["seconds"]) for r in rows)
    out += [f"Runs: {len(rows)}; training and evaluation time summed over runs {seconds / 60:.1f} min"]
    if wall_seconds is not None:
        out[-1] += f"; wall time {wall_seconds / 60:.1f} min"
    out += ["", "Mean test top-1 (%) ± standard deviation over seeds (n seeds).", ""]
    for study in dict.fromkeys(s["study"] for s in summary):
        cells = {(s["labels_per_class"], s["method"]): s for s in summary if s["study"] == study}
        ks = sorted({key[0] for key in cells}, key=lambda v: float("inf") if v == "all" else float(v))
        out += [f"## {STUDY_TITLES.get(study, study)}", ""]
        out += ["| labels/class | " + " | ".join(LABELS[m] for m in METHODS) + " |"]
        out += ["|---" * (len(METHODS) + 1) + "|"]
        for k in ks:
            row = [str(k)]
            for m in METHODS:
                c = cells.get((k, m))
                row.append(f"{100 * c['mean']:.1f} ± {100 * c['std']:.1f} ({c['n']})" if c else "")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    out += ["## Findings (computed from the table)", ""]
    out += [f"- {line}" for line in findings(summary, rows)]
    return "\n".join(out) + "\n"
