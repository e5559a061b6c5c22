"""The ``fashion-mnist-fast`` recipe: its final test accuracy and wall time on 3 seeds, each of its
tricks removed in turn (3 seeds each), and the shipped ``fashion-mnist`` recipe's cost measured in
the same session. Resumable: every finished run is a row of the CSV, and a row already there is not
run again, so an interrupted study picks up where it stopped.

    python benchmarks/fast_recipe.py run [--seeds 0 1 2] [--only full shipped-epoch] [--csv results/fast_recipe.csv]
    python benchmarks/fast_recipe.py report [--csv results/fast_recipe.csv]

A run is one ``resnetkit train --recipe fashion-mnist-fast`` process (the one engine, nothing
else); its wall time is the whole process's, start to exit: start-up, reading the data, training and
the final test evaluation. The accuracy is the final epoch's test top-1 (``summary.json``); nothing
is chosen on the test set. A run that evaluates with TTA (the recipe does: flips and 1-px shifts)
also measures its weights without it (``plain_top1``) in the same pass.
``shipped-epoch`` trains the shipped recipe for one epoch to measure an epoch's cost here: its time
to 94% is that times the epochs it needs (22, its test curve). Training FLOPs are 3x the forward's
(forward + backward) per training image. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resnetkit.train.recipes import RECIPES

HERE = Path(__file__).resolve().parent
RECIPE = "fashion-mnist-fast"
# Each trick of the recipe and what removing it means (train flags after the recipe's).
# The recipe's own net, so an ablation changes only what its name says if the recipe moves on.
OVERRIDES = RECIPES[RECIPE]["model"]["overrides"]


def _net(**changes) -> list[str]:
    return ["--set", f"model.overrides={json.dumps({**OVERRIDES, **changes})}"]


ABLATIONS: dict[str, list[str]] = {
    "full": [],
    "no-whitening (a learned 3x3 conv: the pool_early stem, v6's)": _net(stem_type="pool_early"),
    "no-narrow-first-stage (48/80/160)": _net(channels=[48, 80, 160]),
    "no-narrow-late-stages (32/96/192, v5's)": _net(channels=[32, 96, 192]),
    "no-pool-stem (resnet20, the shipped net)": ["--model", "resnet20", "--set", "model.overrides={}"],
    "label-smoothing-0.1 (v6's)": ["--set", "optim.label_smoothing=0.1"],
    "no-label-smoothing": ["--set", "optim.label_smoothing=0"],
    "no-flip (no flips, no flip TTA)": ["--set", "data.flip=false", "--set", "tta_flip=false"],
    "no-crops (no pad-1 crops, no shift TTA)": ["--set", "data.pad=0", "--set", "tta_shift=0"],
    "no-shift-tta (flip TTA only)": ["--set", "tta_shift=0"],
    "10-epochs (v7's length)": ["--epochs", "10"],
    "no-one-cycle (cosine)": ["--set", "schedule.name=cosine"],
    "no-large-batch (128, lr 0.2)": ["--batch-size", "128", "--lr", "0.2"],
    "no-channels-last": ["--set", "channels_last=false"],
}
SHIPPED = "shipped-epoch"
SHIPPED_EPOCHS_TO_94 = 22  # the shipped recipe's test curve crosses 94% at epoch 22 (issue 24)
FIELDS = [
    *("config", "seed", "top1", "plain_top1", "wall_seconds", "train_seconds", "epochs"),
    *("model", "overrides", "host"),
]


def host() -> str:
    """The cores and the vector units that set the speed (NUMBERS.md: report them beside a time)."""
    info = Path("/proc/cpuinfo")
    flags = info.read_text().split("flags", 1)[-1].split("\n", 1)[0].split() if info.exists() else []
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "?"
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return " ".join([f"{os.cpu_count()} cores, {isa}", *native])


def done(path: Path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    return {(r["config"], int(r["seed"])) for r in csv.DictReader(path.open())}


def append(path: Path, row: dict) -> None:
    """Rewrite the CSV with the row added, atomically (a kill leaves the old file whole)."""
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows([*rows, row])
    os.replace(tmp, path)


def train(config: str, seed: int, out: Path) -> dict:
    name = f"{config.split(' ')[0]}-s{seed}"
    if config == SHIPPED:
        extra = ["--recipe", "fashion-mnist", "--max-steps", "468"]  # one epoch of batch 128
    else:
        extra = ["--recipe", RECIPE, *ABLATIONS[config]]
    if (out / name).exists():  # not in the CSV (run() checked): cut short, so timed again from the start
        shutil.rmtree(out / name)
    cmd = [sys.executable, "-m", "resnetkit", "train", *extra, "--seed", str(seed), "--out", str(out)]
    cmd += ["--name", name, "--no-progress"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((out / name / "summary.json").read_text())
    import yaml

    overrides = (yaml.safe_load((out / name / "config.yaml").read_text())["model"] or {}).get("overrides") or {}
    return {
        "config": config,
        "seed": seed,
        "top1": summary["test"]["top1"],
        "plain_top1": summary["test"].get("plain_top1", summary["test"]["top1"]),
        "wall_seconds": round(wall, 1),
        "train_seconds": round(summary["seconds"], 1),
        "epochs": summary["last"]["epoch"],
        "model": summary["model"],
        "overrides": json.dumps(overrides),
        "host": host(),
    }


def plan(configs: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """The recipe's seeds first, then one epoch of the shipped recipe, then the ablations a seed at
    a time: a study cut short still has the headline figures and every ablation's first seed."""
    order = [("full", s) for s in seeds if "full" in configs] + [(SHIPPED, seeds[0])] * (SHIPPED in configs)
    return order + [(c, s) for s in seeds for c in configs if c not in ("full", SHIPPED)]


def run(a: argparse.Namespace) -> None:
    have = done(a.csv)
    for config, seed in plan(a.only or [*ABLATIONS, SHIPPED], a.seeds):
        if (config, seed) in have:
            continue
        row = train(config, seed, a.out)
        append(a.csv, row)
        print(json.dumps(row), flush=True)


def train_flops(row: dict, epochs: float, images: int = 60000) -> float:
    """The training FLOPs of the net a row trained (its overrides: the recipe's, or an ablation's;
    rows written before they were recorded had v3's 32/96/192 where the model is resnet8_pool)."""
    from resnetkit.models import create_model
    from resnetkit.models.profile import count_macs

    if row.get("overrides"):
        overrides = json.loads(row["overrides"])
    else:
        overrides = {"channels": [32, 96, 192]} if row["model"] == "resnet8_pool" else {}
    macs = count_macs(create_model(row["model"], num_classes=10, in_chans=1, **overrides), 28, in_chans=1)
    return 3 * 2 * macs * images * epochs


def report(a: argparse.Namespace) -> None:
    rows = list(csv.DictReader(a.csv.open()))
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["config"], []).append(r)
    if "full" in by and any(r["plain_top1"] != r["top1"] for r in by["full"]):  # a recipe with TTA
        by["no-tta (the full runs' plain evaluation)"] = [r | {"top1": r["plain_top1"]} for r in by["full"]]
    print(f"host: {rows[0]['host'] if rows else '?'}\n")
    print("| configuration | seeds | test top-1 (each) | mean | the same weights without TTA (mean) "
          "| wall time (mean) | training FLOPs |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|")
    for config, rs in by.items():
        if config == SHIPPED:
            continue
        accs = [float(r["top1"]) for r in rs]
        plain = statistics.mean(float(r["plain_top1"]) for r in rs)
        walls = [float(r["wall_seconds"]) for r in rs]
        flops = train_flops(rs[0], float(rs[0]["epochs"]))
        each = ", ".join(f"{100 * x:.2f}" for x in accs)
        print(
            f"| {config} | {len(rs)} | {each} | {100 * statistics.mean(accs):.2f} | {100 * plain:.2f} | "
            f"{statistics.mean(walls) / 60:.1f} min | {flops / 1e12:.1f} T |"
        )
    if SHIPPED in by:
        r = by[SHIPPED][0]
        epoch = float(r["train_seconds"])
        flops = train_flops(r, SHIPPED_EPOCHS_TO_94)
        print(
            f"\nshipped `fashion-mnist` recipe ({r['model']}): one epoch {epoch / 60:.1f} min here, so 94% "
            f"(epoch {SHIPPED_EPOCHS_TO_94}) after about {SHIPPED_EPOCHS_TO_94 * epoch / 60:.0f} min and "
            f"{flops / 1e12:.0f} TFLOPs of training"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--only", nargs="+", choices=[*ABLATIONS, SHIPPED])
    r.add_argument("--out", type=Path, default=Path("runs/fast_recipe"))
    r.add_argument("--csv", type=Path, default=HERE / "results" / "fast_recipe.csv")
    s = sub.add_parser("report")
    s.add_argument("--csv", type=Path, default=HERE / "results" / "fast_recipe.csv")
    a = p.parse_args()
    run(a) if a.what == "run" else report(a)


if __name__ == "__main__":
    main()
