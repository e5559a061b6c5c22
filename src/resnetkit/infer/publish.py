"""Turning a finished run into shipped weights: ``NAME.TAG.safetensors`` (weights, with the model
config in their metadata) and ``NAME.TAG.json`` (the card: data facts that inference needs, the
measured accuracy, and the config, command, time and machine that made them)."""

from __future__ import annotations

import json
import os
import platform
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write_text, export_weights, load_model, model_card, run_checkpoint
from .evaluate import evaluate_model

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "weights"


def publish_run(
    run: str | os.PathLike[str],
    tag: str,
    out_dir: str | os.PathLike[str] = DEFAULT_OUT,
    checkpoint: str | None = None,
    note: str | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/<model>.<tag>.{safetensors,json}`` from ``run/<checkpoint>``.

    By default the checkpoint the run folder stands for is shipped: ``best.pt`` if the run chose
    one on a validation split, else the final weights (``last.pt``). The test accuracy is
    measured here, with and without TTA (flips, and the shifts its training evaluated with)."""
    run = Path(run)
    if not (run / "summary.json").is_file():
        raise ValueError(f"{run}: not a finished run (no summary.json); finish it with resnetkit train --resume {run}")
    checkpoint = checkpoint or run_checkpoint(run).name
    model = load_model(run / checkpoint)
    metrics: dict[str, Any] = {}
    for tta in (False, True):
        shift = model_card(model).tta_shift if tta else 0
        r = evaluate_model(model, tta_flip=tta, tta_shift=shift, precision="fp32", source=str(run / checkpoint))
        metrics["tta_flip" if tta else "plain"] = {k: r[k] for k in ("top1", "top5", "loss", "n")}
    summary = json.loads((run / "summary.json").read_text())
    name = model.model_cfg["name"]
    out_dir = Path(out_dir)
    provenance = {
        "command": _command(run),
        "checkpoint": checkpoint,
        "steps": summary["steps"],
        "minutes": round(summary["seconds"] / 60, 1),
        "images_per_second": round(summary["images_per_second"]),
        "device": summary["device"],
        "precision": summary["precision"],
        "processes": summary["processes"],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": summary["torch"],
    }
    record = replace(model_card(model), results=metrics, provenance=provenance, config=_yaml(run / "config.yaml"))
    weights = export_weights(model, out_dir / f"{name}.{tag}.safetensors", dataset=record)
    card = {
        **record.to_dict(),  # the task, the data facts inference needs, the measured accuracy, the training
        "num_classes": model.num_classes,
        "model_args": {k: v for k, v in model.model_cfg.items() if k not in ("name", "num_classes", "in_chans")},
        **({"note": note} if note else {}),
    }
    card_path = atomic_write_text(out_dir / f"{name}.{tag}.json", json.dumps(card, indent=2) + "\n")
    return weights, card_path


def _command(run: Path) -> str:
    """The run's command with the program named as a user types it (not .venv/bin/resnetkit)."""
    argv = shlex.split((run / "command.txt").read_text())
    if argv and Path(argv[0]).name == "resnetkit":
        argv[0] = "resnetkit"
    return shlex.join(argv)


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())
