"""What the sequences study writes: one row per run (results.csv), mean ± std per dataset and
method (summary.csv), accuracy.png and report.md, whose verdicts are computed from the rows against
the published ResNet accuracies below."""

from __future__ import annotations

import csv
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..artifacts import atomic_write, atomic_write_text
from .sequences import ALL_METHODS, BASELINES, DATASETS, SERIES, TEXT, normalize_of
from .transfer_report import write_csv

ROW_KEYS = (
    "dataset",
    "kind",
    "method",
    "seed",
    "accuracy",
    "seconds",
    "train_items",
    "test_items",
    "classes",
    "settings",
    "run",
)
LABELS = {
    "resnet_tsc": "ResNet (Wang et al.)",
    "plain_tsc": "plain twin",
    "minirocket": "MiniRocket",
    "minirocket-raw": "MiniRocket, raw values",
    "resnet_text": "byte ResNet",
    "plain_text": "byte plain twin",
    "tfidf-logreg": "TF-IDF + LR",
}
WITHIN = 1.0  # points: the goal, "within 1 point of the published ResNet's mean"


@dataclass(frozen=True)
class Published:
    """A published ResNet test accuracy (%): mean (std) over ``runs`` runs, and where it is from."""

    mean: float
    std: float
    runs: int
    source: str


_DL4TSC = "Fawaz et al. 2019, hfawaz/dl-4-tsc"
PUBLISHED = {
    "GunPoint": Published(99.1, 0.7, 10, f"{_DL4TSC} results/results-uea-avg-std.csv (UCR 2015, Gun_Point)"),
    "ArrowHead": Published(84.5, 1.2, 10, f"{_DL4TSC} results/results-uea-avg-std.csv (UCR 2015)"),
    "ItalyPowerDemand": Published(96.3, 0.4, 10, f"{_DL4TSC} results/results-uea-avg-std.csv (UCR 2015)"),
    "OSULeaf": Published(97.9, 0.8, 10, f"{_DL4TSC} results/results-uea-avg-std.csv (UCR 2015)"),
    "JapaneseVowels": Published(99.2, 0.3, 10, f"{_DL4TSC} results/results-mts-avg-std.csv (Baydogan's MTS archive)"),
    # Not in dl-4-tsc (its multivariate results are Baydogan's MTS archive, which lacks BasicMotions):
    # Ruiz et al. 2021, "The great multivariate time series classification bake off", whose ResNet
    # (the same architecture) scored 1.0 on all 30 resamples, fold 0 being the archive's split.
    "BasicMotions": Published(
        100.0,
        0.0,
        30,
        "Ruiz et al. 2021 (UEA bake-off), time-series-machine-learning/tsml-eval "
        "results/classification/Multivariate/ResNet_ACC.csv; not published in dl-4-tsc",
    ),
}


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a results.csv, numbers as numbers."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        for r in rows:
            r["seed"], r["accuracy"], r["seconds"] = int(r["seed"]), float(r["accuracy"]), float(r["seconds"])
            for k in ("train_items", "test_items", "classes"):
                r[k] = int(r[k])
            if not {"dataset", "method", "settings"} <= r.keys():
                raise KeyError("dataset, method or settings")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a results file of this study ({e}); use another --out or remove it") from None
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, std (n-1), min and max of accuracy and the mean seconds per (dataset, method)."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for (dataset, method), runs in cells.items():
        acc = [float(r["accuracy"]) for r in runs]
        out.append(
            {
                "dataset": dataset,
                "method": method,
                "seeds": len(acc),
                "mean": statistics.fmean(acc),
                "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "min": min(acc),
                "max": max(acc),
                "seconds": statistics.fmean(float(r["seconds"]) for r in runs),
            }
        )
    return out


def _cells(summary: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["dataset"], s["method"]): s for s in summary}


def _compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, str]:
    """(a - b in points, "ahead of" / "behind" / "level with"): a gap counts beyond both spreads summed."""
    gap = 100 * (a["mean"] - b["mean"])
    noise = 100 * (a["std"] + b["std"])
    return gap, "ahead of" if gap > noise else "behind" if gap < -noise else "level with"


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The report's findings, each computed from the rows (and ``PUBLISHED``)."""
    cells = _cells(summarize(rows))
    lines = []
    series = [d for d in SERIES if any(k[0] == d for k in cells)]
    ours = [d for d in series if (d, "resnet_tsc") in cells and d in PUBLISHED]
    if ours:
        near = [d for d in ours if abs(100 * cells[(d, "resnet_tsc")]["mean"] - PUBLISHED[d].mean) <= WITHIN]
        gaps = ", ".join(f"{d} {100 * cells[(d, 'resnet_tsc')]['mean'] - PUBLISHED[d].mean:+.1f}" for d in ours)
        lines.append(
            f"The time-series ResNet is within {WITHIN:g} point of the published mean on {len(near)} of {len(ours)} "
            f"datasets (goal: 4 of 6); its mean minus the published mean, in points: {gaps}."
        )
    elif series:
        lines.append("The time-series ResNet has no rows yet: its comparison with the published means is pending.")
    for d in series:
        mini, res, plain = cells.get((d, "minirocket")), cells.get((d, "resnet_tsc")), cells.get((d, "plain_tsc"))
        if mini and res:
            gap, how = _compare(mini, res)
            verb = "beats" if how == "ahead of" else "loses to" if how == "behind" else "is level with"
            lines.append(
                f"{d}: MiniRocket {verb} the ResNet ({100 * mini['mean']:.1f}% vs {100 * res['mean']:.1f}%, "
                f"{gap:+.1f} points; spreads {100 * mini['std']:.1f} / {100 * res['std']:.1f}); "
                f"{mini['seconds']:.1f} s against {res['seconds']:.0f} s a run."
            )
        if res and plain:
            gap, how = _compare(res, plain)
            lines.append(f"{d}: the ResNet is {how} its plain twin ({gap:+.1f} points).")
    beaten = [d for d in series if (d, "minirocket") in cells and d in PUBLISHED]
    if beaten:
        ahead = [d for d in beaten if 100 * cells[(d, "minirocket")]["mean"] >= PUBLISHED[d].mean]
        gaps = ", ".join(f"{d} {100 * cells[(d, 'minirocket')]['mean'] - PUBLISHED[d].mean:+.1f}" for d in beaten)
        lines.append(
            f"MiniRocket matches or beats the published ResNet mean on {len(ahead)} of {len(beaten)} datasets "
            f"(its mean minus the published, in points: {gaps})."
        )
    for d in series:
        norm, raw = cells.get((d, "minirocket")), cells.get((d, "minirocket-raw"))
        if norm and raw and abs(100 * (raw["mean"] - norm["mean"])) > WITHIN:
            lines.append(
                f"{d}: per-series z-normalisation changes MiniRocket's accuracy by "
                f"{100 * (norm['mean'] - raw['mean']):+.1f} points ({100 * raw['mean']:.1f}% on the raw values, "
                f"{100 * norm['mean']:.1f}% per series normalised{_resnet_input(d)})."
            )
    for d in TEXT:
        base, res, plain = cells.get((d, "tfidf-logreg")), cells.get((d, "resnet_text")), cells.get((d, "plain_text"))
        if base and res:
            gap, how = _compare(res, base)
            lines.append(
                f"{d}: the byte ResNet is {how} TF-IDF + LR ({100 * res['mean']:.1f}% vs {100 * base['mean']:.1f}%, "
                f"{gap:+.1f} points)."
            )
        elif base:
            lines.append(
                f"{d}: TF-IDF + LR {100 * base['mean']:.1f} ± {100 * base['std']:.1f}% over {base['seeds']} seeds in "
                f"{base['seconds']:.0f} s a run; the byte ResNet's rows are pending."
            )
        if res and plain:
            gap, how = _compare(res, plain)
            lines.append(f"{d}: the byte ResNet is {how} its plain twin ({gap:+.1f} points).")
    return lines


def plot_accuracy(summary: list[dict[str, Any]], path: Path) -> Path:
    """Mean accuracy ± std per dataset, one bar per method, the published ResNet mean as a tick."""
    cells = _cells(summary)
    datasets = [d for d in DATASETS if any(k[0] == d for k in cells)]
    methods = [m for m in ALL_METHODS if any(k[1] == m for k in cells)]
    fig = Figure(figsize=(max(6.0, 1.6 * len(datasets) + 2), 4.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(methods), 1)
    for i, m in enumerate(methods):
        xs = [j + (i - (len(methods) - 1) / 2) * width for j, d in enumerate(datasets) if (d, m) in cells]
        ys = [100 * cells[(d, m)]["mean"] for d in datasets if (d, m) in cells]
        es = [100 * cells[(d, m)]["std"] for d in datasets if (d, m) in cells]
        ax.bar(xs, ys, width, yerr=es, capsize=2, label=LABELS.get(m, m))
    pub = [(j, PUBLISHED[d].mean) for j, d in enumerate(datasets) if d in PUBLISHED]
    if pub:
        at, values = [j for j, _ in pub], [p for _, p in pub]
        ax.scatter(at, values, marker="_", s=900, color="black", zorder=3, label="published ResNet")
    ax.set_xticks(range(len(datasets)), datasets, rotation=20)
    low = min([100 * s["mean"] for s in summary] + [p for _, p in pub])
    ax.set(ylabel="test accuracy (%)", ylim=(max(0.0, low - 10), 101))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Sequences: mean test accuracy ± std over seeds")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def _resnet_input(dataset: str) -> str:
    mode = normalize_of(dataset)
    if mode == "series":
        return ", as the ResNets see it"
    return f"; the ResNets see it with data.normalize={mode}"


def _resnet_settings(rows: list[dict[str, Any]]) -> list[str]:
    """What each dataset's ResNet rows were made with (epochs, normalisation), from the rows."""
    made: dict[str, set[str]] = {}
    for r in rows:
        if r["method"] not in BASELINES:
            made.setdefault(r["dataset"], set()).add(r["settings"])
    return [f"{d}: {', '.join(sorted(made[d]))}" for d in DATASETS if d in made]


def report_text(rows: list[dict[str, Any]], command: str = "", notes: list[str] | None = None) -> str:
    summary = summarize(rows)
    cells = _cells(summary)
    methods = [m for m in ALL_METHODS if any(k[1] == m for k in cells)]
    minutes = sum(float(r["seconds"]) for r in rows) / 60
    out = ["# Residual networks beyond images: time series and text", ""]
    if command:
        out += [f"Command: `{command}`", ""]
    out += [f"- {n}" for n in notes or []] + ([""] if notes else [])
    out += [f"Rows: {len(rows)}; time summed over runs {minutes:.1f} min.", ""]
    out += ["Mean test accuracy (%) ± std over seeds (n), and seconds a run (fit + test).", ""]
    out += ["| dataset | published ResNet | " + " | ".join(LABELS.get(m, m) for m in methods) + " |"]
    out += ["|---" * (len(methods) + 2) + "|"]
    for d in DATASETS:
        if not any(k[0] == d for k in cells):
            continue
        p = PUBLISHED.get(d)
        row = [d, f"{p.mean:.1f} ± {p.std:.1f} ({p.runs})" if p else "-"]
        for m in methods:
            c = cells.get((d, m))
            row.append(
                f"{100 * c['mean']:.1f} ± {100 * c['std']:.1f} ({c['seeds']}), {c['seconds']:.1f} s" if c else ""
            )
        out.append("| " + " | ".join(row) + " |")
    pending = [m for m in ALL_METHODS if m not in methods]
    if pending:
        out += ["", f"Pending (no rows yet): {', '.join(LABELS.get(m, m) for m in pending)}."]
    out += ["", "![accuracy per dataset and method](accuracy.png)", ""]
    out += ["## Findings (computed from results.csv)", ""] + [f"- {line}" for line in verdicts(rows)]
    settings = _resnet_settings(rows)
    if settings:
        out += ["", "## What the ResNet rows were made with (from results.csv)", ""] + [f"- {s}" for s in settings]
    out += ["", "## Published ResNet accuracies", ""]
    out += [f"- {d}: {p.mean:.1f} ({p.std:.1f}), {p.runs} runs: {p.source}" for d, p in PUBLISHED.items()]
    return "\n".join(out) + "\n"


def write_results(
    rows: list[dict[str, Any]], out: str | os.PathLike[str], command: str = "", notes: list[str] | None = None
) -> dict[str, Path]:
    """results.csv, summary.csv, accuracy.png and report.md in ``out``, each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    return {
        "results": write_csv(rows, out / "results.csv", ROW_KEYS),
        "summary": write_csv(summary, out / "summary.csv"),
        "plot": plot_accuracy(summary, out / "accuracy.png"),
        "report": atomic_write_text(out / "report.md", report_text(rows, command, notes)),
    }
