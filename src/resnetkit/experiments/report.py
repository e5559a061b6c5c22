"""The degradation experiment's record: ``results.csv``, ``curves.png``, ``report.md`` (its verdict
in sentences with the numbers, and the command and machine that made them) and ``result.json``."""

from __future__ import annotations

import os
from pathlib import Path

from ..analysis.records import write_json
from .degradation import DegradationResult, pct
from .plots import plot_degradation


def write_degradation(result: DegradationResult, out: str | os.PathLike, command: str | None = None) -> dict[str, Path]:
    """``results.csv``, ``curves.png``, ``report.md`` and ``result.json`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / "results.csv",
        "curves": out / "curves.png",
        "report": out / "report.md",
        "json": out / "result.json",
    }
    header = "model,depth,shortcuts,final_train_error,final_test_error,best_test_error,seconds,run_dir\n"
    paths["results"].write_text(
        header
        + "".join(
            f"{r.model},{r.depth},{'yes' if r.residual else 'no'},{r.final_train_error:.4f},{r.final_test_error:.4f},"
            f"{r.best_test_error:.4f},{r.seconds:.0f},{r.run_dir}\n"
            for r in result.runs
        )
    )
    plot_degradation(result, paths["curves"])
    paths["report"].write_text(_report(result, command))
    write_json(result, paths["json"])
    return paths


def _report(result: DegradationResult, command: str | None) -> str:
    m = result.machine
    minutes = sum(r.seconds for r in result.runs) / 60
    rows = "\n".join(
        f"| {r.model} | {r.depth} | {'yes' if r.residual else 'no'} | {pct(r.final_train_error)} | "
        f"{pct(r.final_test_error)} | {pct(r.best_test_error)} | {r.seconds / 60:.1f} min |"
        for r in result.runs
    )
    lines = [
        f"# Degradation experiment on {result.data}: plain nets against ResNets",
        "",
        f"He et al. 2015 (arXiv:1512.03385), §4.2 and Fig. 6: nets of depths {', '.join(map(str, result.depths))}, "
        f"with and without shortcuts, trained with the `{result.recipe}` recipe for {result.epochs} epochs, "
        f"seed {result.seed}.",
        "",
        *([f"Command: `{command}`", ""] if command else []),
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores ({m.get('threads')} threads), device {m.get('device')}, "
        f"precision {m.get('precision')}, torch {m.get('torch')}. "
        f"Training and evaluation took {minutes:.0f} min in all.",
        "",
        "![training and test error](curves.png)",
        "",
        "| model | depth | shortcuts | final training error | final test error | best test error | time |",
        "|---|---:|---|---:|---:|---:|---:|",
        rows,
        "",
        "Training error is the last epoch's, on augmented images in train mode (the paper's thin curves); "
        "test error is on the full test set after the last epoch.",
        "",
        "## What the numbers show",
        "",
        *[f"- {line}" for line in result.findings],
        "",
    ]
    return "\n".join(lines)
