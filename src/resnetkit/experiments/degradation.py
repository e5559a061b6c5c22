"""The degradation experiment (He et al. 2015, arXiv:1512.03385, §4.1-4.2, Figs. 1 and 6): plain nets
and their residual twins trained with one recipe and seed. Going deeper, the plain net ends with a
higher *training* error (so it is not overfitting: BN keeps its signals alive, yet it optimizes
worse); the ResNet of the same depth does not."""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..artifacts import read_csv
from ..models import is_model
from ..train.config import TrainConfig, merge
from ..train.recipes import recipe
from .runs import train_or_reuse

log = logging.getLogger("resnetkit.experiment")


@dataclass
class TwinRun:
    """One trained net of the experiment, read back from its run folder."""

    model: str
    depth: int
    residual: bool
    run_dir: str
    train_curve: list[tuple[int, float]]  # (iteration, training error) every log_every steps
    test_curve: list[tuple[int, float]]  # (iteration, test error) every epoch
    final_train_error: float  # the last epoch's, on augmented images in train mode: the paper's thin curves
    final_test_error: float
    best_test_error: float
    seconds: float


@dataclass
class DegradationResult:
    data: str
    depths: list[int]
    epochs: int
    seed: int
    recipe: str
    runs: list[TwinRun]
    degradation: bool | None  # the deepest plain net trains to a higher error than the shallowest (None: one depth)
    resolved: bool | None  # and the deepest ResNet trains no worse than the shallowest, and better than its plain twin
    findings: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)


def twin_names(depths: list[int]) -> list[tuple[str, int, bool]]:
    """(model, depth, residual) for each depth's plain net and ResNet, checked to exist."""
    twins = [(f"{kind}{d}", d, kind == "resnet") for d in sorted(set(depths)) for kind in ("plain", "resnet")]
    missing = [name for name, _, _ in twins if not is_model(name)]
    if missing:
        raise ValueError(
            f"--depths: no model {', '.join(missing)}; plain twins exist for depths 18, 20, 32, 34, 44, 56, 110"
        )
    return twins


def experiment_config(
    model: str,
    data: str,
    epochs: int,
    seed: int,
    out: str | os.PathLike,
    recipe_name: str = "paper-cifar",
    overrides: dict | None = None,
) -> TrainConfig:
    """The recipe's hyperparameters (the paper's §4.2 by default) on ``data``, evaluated on its test
    set as Fig. 6 is, for ``epochs``; the same for every net but its name."""
    values = merge(
        recipe(recipe_name, model),
        {
            "model": {"name": model},
            "data": {"name": data, "val_size": 0},
            "epochs": epochs,
            "max_steps": None,
            "seed": seed,
            "out": str(out),
            "run_name": model,
            "test_curve": True,
        },
    )
    return TrainConfig.from_dict(merge(values, overrides or {}))


def read_twin(run_dir: Path, model: str, depth: int, residual: bool) -> TwinRun:
    epochs = read_csv(run_dir / "metrics.csv")
    steps = read_csv(run_dir / "steps.csv")
    if not epochs:
        raise ValueError(f"{run_dir}: no finished epoch in metrics.csv")
    last = epochs[-1]
    return TwinRun(
        model=model,
        depth=depth,
        residual=residual,
        run_dir=str(run_dir),
        train_curve=[(int(r["step"]), 1 - r["train_top1"]) for r in steps],
        test_curve=[(int(r["step"]), 1 - r["eval_top1"]) for r in epochs],
        final_train_error=1 - last["train_top1"],
        final_test_error=1 - last["eval_top1"],
        best_test_error=1 - max(r["eval_top1"] for r in epochs),
        seconds=last["seconds"],
    )


def run_degradation(
    data: str = "fashion-mnist",
    depths: Sequence[int] = (20, 56),
    epochs: int = 10,
    seed: int = 0,
    out: str | os.PathLike = "runs/degradation",
    recipe_name: str = "paper-cifar",
    overrides: dict | None = None,
    restart: bool = False,
) -> DegradationResult:
    """Train (or reuse, or resume) each plain net and ResNet under ``out/runs/`` (``train_or_reuse``),
    then judge from the numbers."""
    twins = twin_names(list(depths))
    runs = []
    for name, depth, residual in twins:
        cfg = experiment_config(name, data, epochs, seed, Path(out) / "runs", recipe_name, overrides)
        runs.append(read_twin(train_or_reuse(cfg, restart), name, depth, residual))
    degradation, resolved, findings = judge(runs)
    summary = json.loads((Path(runs[0].run_dir) / "summary.json").read_text())
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": summary.get("device"),
        "precision": summary.get("precision"),
        "torch": torch.__version__,
    }
    return DegradationResult(
        data, sorted(set(depths)), epochs, seed, recipe_name, runs, degradation, resolved, findings, machine
    )


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def judge(runs: list[TwinRun]) -> tuple[bool | None, bool | None, list[str]]:
    """Whether the degradation problem appeared (the deepest plain net ends with a higher training
    error than the shallowest) and whether residual learning removed it, in sentences with the numbers."""
    plain = {r.depth: r for r in runs if not r.residual}
    res = {r.depth: r for r in runs if r.residual}
    lo, hi = min(plain), max(plain)
    if lo == hi:
        return (
            None,
            None,
            [f"Only depth {lo} was trained: degradation needs two depths to compare (e.g. --depths 20,56)."],
        )
    p_lo, p_hi, r_lo, r_hi = plain[lo], plain[hi], res[lo], res[hi]
    degradation = p_hi.final_train_error > p_lo.final_train_error
    resolved = r_hi.final_train_error <= r_lo.final_train_error and r_hi.final_train_error < p_hi.final_train_error
    findings = [
        f"Plain nets: plain{hi} ends with {pct(p_hi.final_train_error)} training error, plain{lo} with "
        f"{pct(p_lo.final_train_error)} (test: {pct(p_hi.final_test_error)} vs {pct(p_lo.final_test_error)}). "
        + (
            "The deeper plain net trains worse: the degradation problem appeared."
            if degradation
            else "The deeper plain net does not train worse: no degradation at these depths and this budget."
        ),
        f"ResNets: resnet{hi} ends with {pct(r_hi.final_train_error)} training error, resnet{lo} with "
        f"{pct(r_lo.final_train_error)} (test: {pct(r_hi.final_test_error)} vs {pct(r_lo.final_test_error)}). "
        + (
            "The deeper ResNet trains no worse."
            if r_hi.final_train_error <= r_lo.final_train_error
            else "The deeper ResNet trains worse too."
        ),
        f"Shortcuts at depth {hi}: resnet{hi} {pct(r_hi.final_train_error)} against plain{hi} "
        f"{pct(p_hi.final_train_error)} training error "
        f"({100 * (p_hi.final_train_error - r_hi.final_train_error):+.2f} points "
        "in the ResNet's favour).",
    ]
    if degradation and resolved:
        findings.append("Verdict: degradation appeared in the plain nets, and residual learning removed it.")
    elif degradation:
        findings.append(
            "Verdict: degradation appeared in the plain nets; at this budget the shortcuts did not fully remove it."
        )
    else:
        findings.append("Verdict: no degradation to remove here; train longer, or deeper (--depths 20,56,110).")
    return degradation, resolved, findings
