"""Time to a test accuracy on Fashion-MNIST (default 94%), read from a run's metrics.csv (its
per-epoch test curve: a run trained with ``test_curve: true``).

    python benchmarks/time_to_accuracy.py --run runs/resnet20-fmnist      # an existing run
    python benchmarks/time_to_accuracy.py --train --model resnet20 --epochs 15   # train one now

The seconds are the run's own cumulative training + evaluation time per epoch (metrics.csv's
`seconds` column), so the figure is measured where the run ran. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def time_to(run: Path, target: float) -> dict:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    if not rows or "eval_top1" not in rows[0]:
        raise SystemExit(f"{run}: no per-epoch evaluation in metrics.csv (train with --set test_curve=true)")
    for r in rows:
        if float(r["eval_top1"]) >= target:
            return {
                "run": str(run),
                "target": target,
                "reached": True,
                "epoch": int(float(r["epoch"])),
                "seconds": float(r["seconds"]),
                "eval_top1": float(r["eval_top1"]),
            }
    best = max(float(r["eval_top1"]) for r in rows)
    return {"run": str(run), "target": target, "reached": False, "epochs": len(rows), "best_eval_top1": best}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="run folder to read")
    p.add_argument("--train", action="store_true", help="train with the fashion-mnist recipe first")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--target", type=float, default=0.94)
    a = p.parse_args()
    if a.train:
        from resnetkit.train import TrainConfig, fit, recipe
        from resnetkit.train.config import merge

        cfg = TrainConfig.from_dict(
            merge(
                recipe("fashion-mnist"),
                {"model": {"name": a.model}, "epochs": a.epochs, "out": "runs/bench", "test_curve": True},
            )
        )
        a.run = fit(cfg).run_dir
    if a.run is None:
        p.error("give --run DIR or --train")
    print(json.dumps(time_to(a.run, a.target), indent=2))


if __name__ == "__main__":
    main()
