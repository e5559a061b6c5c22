"""Turning a finished run into shipped weights: ``NAME.TAG.safetensors`` (weights, with the model
config in their metadata) and ``NAME.TAG.json`` (the card: data facts that inference needs, the
measured accuracy, and the config, command, time and machine that made them)."""
from __future__ import annotations

import json
import os
import platform
import shlex
from pathlib import Path

import torch

from .loading import export_weights, load_model
from .models.weights import atomic_write


def publish_run(run: str | os.PathLike, tag: str, out_dir: str | os.PathLike, checkpoint: str = "last.pt",
                note: str | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/<model>.<tag>.{safetensors,json}`` from ``run/<checkpoint>``.

    The final weights (``last.pt``) are shipped by default, not the best-on-test epoch: with the
    test set as the evaluation set, picking the best epoch would report a number chosen on it.
    The test accuracy is measured here, with and without flip TTA."""
    from .evaluation import evaluate_model

    run = Path(run)
    if not (run / "summary.json").is_file():
        raise ValueError(f"{run}: not a finished run (no summary.json); finish it with resnetkit train --resume {run}")
    model = load_model(run / checkpoint)
    data = model.pretrained_cfg
    metrics = {}
    for tta in (False, True):
        r = evaluate_model(model, tta_flip=tta, precision="fp32", source=str(run / checkpoint))
        metrics["tta_flip" if tta else "plain"] = {k: r[k] for k in ("top1", "top5", "loss", "n")}
    summary = json.loads((run / "summary.json").read_text())
    name = model.model_cfg["name"]
    out_dir = Path(out_dir)
    weights = export_weights(model, out_dir / f"{name}.{tag}.safetensors", dataset=data)
    card = {
        **data,  # name (the dataset), classes, mean, std, in_chans, image_size: what inference needs
        "num_classes": model.num_classes,
        "model_args": {k: v for k, v in model.model_cfg.items() if k not in ("name", "num_classes", "in_chans")},
        "test": metrics,
        "training": {
            "command": _command(run),
            "config": _yaml(run / "config.yaml"),
            "checkpoint": checkpoint,
            "steps": summary["steps"],
            "minutes": round(summary["seconds"] / 60, 1),
            "images_per_second": round(summary["images_per_second"]),
            "device": summary["device"], "precision": summary["precision"], "processes": summary["processes"],
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": summary["torch"],
        },
        **({"note": note} if note else {}),
    }
    card_path = atomic_write(out_dir / f"{name}.{tag}.json",
                             lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2) + "\n"))
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


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Ship a finished run as NAME.TAG.safetensors + NAME.TAG.json")
    p.add_argument("run")
    p.add_argument("tag")
    p.add_argument("--out", default=str(Path(__file__).parent / "weights"))
    p.add_argument("--note")
    a = p.parse_args()
    torch.set_grad_enabled(False)
    from .data import DatasetError

    try:
        for path in publish_run(a.run, a.tag, a.out, note=a.note):
            print(path)
    except (ValueError, FileNotFoundError, DatasetError) as e:
        raise SystemExit(f"resnetkit.publish: error: {e}") from None
