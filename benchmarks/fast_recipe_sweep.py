"""Candidate changes to the ``fashion-mnist-fast`` recipe, scored on a validation split over several
seeds: the final epoch's top-1 on 5,000 training images held out (``data.val_size=5000``), never
the test set. Many short runs at once, so it is meant for a GPU (the device tool's machine), where
a 10-epoch run of this small net takes seconds; the accuracy of a recipe does not depend on where
it trains (bf16 autocast on both), its time does, and is measured on the 2-core CPU by
``fast_recipe.py``.

    python benchmarks/fast_recipe_sweep.py run --device cuda --jobs 12 --seeds 0 1 2 3 --csv OUT.csv
    python benchmarks/fast_recipe_sweep.py run --phase v6 --device cpu --jobs 2 --seeds 0 1 2 --csv OUT.csv
    python benchmarks/fast_recipe_sweep.py report --csv OUT.csv

Phase one tries each change alone on the recipe's fourth version (32/96/192, lr 0.2, flip and
1-px shift TTA) trained for 8 epochs (the time budget wanted fewer than its 10); phase two
combines the changes that beat that baseline's mean. Each run is one ``resnetkit train`` process
(the one engine). ``--phase v6`` and ``v7`` instead score a few ways to spend the fifth and
sixth versions' spare minute, ``v8`` the tricks of issue 24's list not tried before, ``v9``
regularizers for the whiten stem, ``v10`` and ``v11`` ways to lift the seventh version and ``v12``
its pad-1 crops trained longer (the eighth); on a CPU each run
gets its share of the cores (``--jobs 2``: one thread each). Resumable: rows already in the CSV
are not run again. A deadline (``--deadline`` seconds) stops new runs from starting.
Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RECIPE_OVERRIDES = {"channels": [32, 96, 192], "stem_type": "pool_early"}
# What each phase's candidates change, spelled out in full: the recipe has moved on since (its
# eighth version is 32/80/160 behind the whiten stem, smoothing 0.2, pad-1 crops), and a phase run again must
# train what it trained.
# Up to v6 the recipe smoothed labels by 0.1 (v7: 0.2); the stem is RECIPE_OVERRIDES' pool_early.
# Up to v7 it trained no crops (v8: pad 1), so each base spells out pad 0.
LS = {"optim.label_smoothing": 0.1, "data.pad": 0}
V5_BASE = {**LS, "optim.lr": 0.2, "tta_shift": 1, "overrides": {"channels": [32, 96, 192]}}  # v4
V6_BASE = {**LS, "epochs": 8, "optim.lr": 0.4, "tta_shift": 0, "overrides": {"channels": [32, 96, 192]}}  # v5
BASELINE = "8ep"
# name -> changes: config keys (dotted, as --set takes them) and model overrides merged into the recipe's.
CANDIDATES: dict[str, dict] = {
    "10ep (the recipe)": {"epochs": 10},
    BASELINE: {"epochs": 8},
    "9ep": {"epochs": 9},
    "8ep ls0.2": {"epochs": 8, "optim.label_smoothing": 0.2},
    "8ep ema0.99": {"epochs": 8, "ema_decay": 0.99},
    "8ep lr0.3": {"epochs": 8, "optim.lr": 0.3},
    "8ep lr0.4": {"epochs": 8, "optim.lr": 0.4},
    "8ep wd1e-3": {"epochs": 8, "optim.weight_decay": 0.001},
    "8ep pad1": {"epochs": 8, "data.pad": 1},
    "8ep erase0.1": {"epochs": 8, "data.erasing": 0.1},
    "8ep zero-init": {"epochs": 8, "overrides": {"zero_init_residual": True}},
    "8ep 32/128/256": {"epochs": 8, "overrides": {"channels": [32, 128, 256]}},
    "8ep 24/96/192": {"epochs": 8, "overrides": {"channels": [24, 96, 192]}},
    "8ep bs128 lr0.1": {"epochs": 8, "data.batch_size": 128, "optim.lr": 0.1},
}
# Phase "v6": on the fifth version (8 epochs at lr 0.4, flip TTA), ways to spend its spare minute
# (220-242 s of 300 on the 2-core CPU): a ninth epoch, or narrower late stages that train 1.18x
# faster a step (bf16, batch 256, 2 threads: 32/96/192 2,464 images/s, 32/80/160 2,912, 32/64/192
# 2,914) and so afford ten epochs in about the time of v5's eight.
V6: dict[str, dict] = {
    "v5": {},
    "v5 9ep": {"epochs": 9},
    "v5 10ep 32/80/160": {"epochs": 10, "overrides": {"channels": [32, 80, 160]}},
    "v5 10ep 32/64/192": {"epochs": 10, "overrides": {"channels": [32, 64, 192]}},
}
# Phase "v7": the sixth version ("v5 10ep 32/80/160" above) trained 10 epochs in 216 s on the
# quiet host, a minute short of the budget again: spent on two more epochs, or on a 48-wide stem.
V7_BASE = {**LS, "epochs": 10, "optim.lr": 0.4, "tta_shift": 0, "overrides": {"channels": [32, 80, 160]}}  # v6
V7: dict[str, dict] = {
    "v6 12ep": {"epochs": 12},
    "v6 48/80/160": {"overrides": {"channels": [48, 80, 160]}},
    # v6's ablations (fast_recipe.py, on the test set) scored two removals above v6 on all three
    # seeds: the pool stem instead of pool_early, and batch 128 at lr 0.2. A test score cannot
    # choose a setting, so each is scored here, on the validation split, against v6's own row.
    "v6 pool stem": {"overrides": {"stem_type": "pool"}},
    "v6 bs128 lr0.2": {"data.batch_size": 128, "optim.lr": 0.2},
}
# Phase "v8": the two tricks of issue 24's list not tried before, each on v6 as it stands: airbench's
# frozen patch-whitening first conv (the "whiten" stem: 18 fixed 3x3 filters fitted to the training
# images, then the pool, norm and act) and Lookahead (Zhang et al. 2019: k=5, alpha=0.5).
V8: dict[str, dict] = {
    "v6 whiten stem": {"overrides": {"stem_type": "whiten"}},
    "v6 lookahead": {"optim.lookahead_steps": 5},
}
# Phase "v9": on validation the whiten stem scored level with v6 (94.36 against 94.31) while fitting
# its training images better (97.2% training top-1 against 96.3%): it has accuracy to spare for a
# regularizer that an underfitting net could not afford (at 8 epochs, on v4, each cost 0.15-0.2).
V9: dict[str, dict] = {
    "v6 whiten pad1": {"overrides": {"stem_type": "whiten"}, "data.pad": 1},
    "v6 whiten ls0.2": {"overrides": {"stem_type": "whiten"}, "optim.label_smoothing": 0.2},
}
# Phase "v10": the seventh version ("v6 whiten ls0.2" above) scored 94.33, 94.21 and 93.98 on the
# test set in 208-234 s: a seed 0.02 short, and a minute of the budget unspent. Scored on the
# validation split against v9's row of it: an eleventh epoch (about 10% more time), the pad-1
# crops that also helped the whiten stem in v9, and more smoothing.
V10_BASE = {**V7_BASE, "optim.label_smoothing": 0.2, "overrides": {"channels": [32, 80, 160], "stem_type": "whiten"}}
V10: dict[str, dict] = {
    "v7 11ep": {"epochs": 11},
    "v7 pad1": {"data.pad": 1},
    "v7 ls0.3": {"optim.label_smoothing": 0.3},
}
# Phase "v11": nothing in v10 beat v7 and its seed 2 stays 0.02 short on the test set. Three larger
# steps, each on v7: the 96/192 late stages back (1.18x the step time, inside the budget at ten
# epochs now that v7 takes 3.6 of its 5 minutes); pad-1 crops with the one-pixel shifted views
# averaged in at test time (v5 dropped those views because it trained no translation, which pad-1
# crops now supply); and airbench's alternating flip (Jordan 2024, arXiv:2404.00498 section 3.6:
# after a random first epoch each image is mirrored in every other epoch, so two epochs in a row
# show both sides of it).
V11: dict[str, dict] = {
    "v7 96/192": {"overrides": {"channels": [32, 96, 192]}},
    "v7 pad1 shift1": {"data.pad": 1, "tta_shift": 1},
    "v7 alternate flip": {"data.flip_mode": "alternate"},
}
# Phase "v12": every v11 candidate scored level with v7 (94.31-94.46 against 94.47). Pad-1 crops
# leave the net underfitting (94.7% training top-1 against 97.0%), so they may need more epochs
# than v7 trains: twelve (about 4.3 minutes on the 2-core CPU), with shift TTA, and with
# alternating flips on top.
V12: dict[str, dict] = {
    "v7 pad1 shift1 12ep": {"data.pad": 1, "tta_shift": 1, "epochs": 12},
    "v7 pad1 shift1 alternate 12ep": {"data.pad": 1, "tta_shift": 1, "epochs": 12, "data.flip_mode": "alternate"},
}
# Phase "v13": v8's ablations (fast_recipe.py, on the test set) scored two removals above v8 on
# every seed or nearly: no flips (+0.26; in v6's and v7's ablations, before pad-1 crops, removing
# them cost 0.10-0.22) and cosine in place of one-cycle (+0.12). A test score cannot choose a
# setting, so each is scored here, on the validation split, against v8's own row ("v7 pad1 shift1
# 12ep" above).
V13_BASE = {**V10_BASE, **V12["v7 pad1 shift1 12ep"]}  # v8
V13: dict[str, dict] = {
    "v8 no flips": {"data.flip": False, "tta_flip": False},
    "v8 cosine": {"schedule.name": "cosine"},
}
PHASES = {
    "v6": (V6, V6_BASE),
    "v7": (V7, V7_BASE),
    "v8": (V8, V7_BASE),
    "v9": (V9, V7_BASE),
    "v10": (V10, V10_BASE),
    "v11": (V11, V10_BASE),
    "v12": (V12, V10_BASE),
    "v13": (V13, V13_BASE),
}
FIELDS = ["candidate", "seed", "val_top1", "train_top1", "steps", "seconds", "changes"]


def flags(changes: dict, device: str, data_dir: str | None) -> list[str]:
    out = ["--recipe", "fashion-mnist-fast", "--device", device, "--set", "data.val_size=5000"]
    if data_dir:
        out += ["--set", f"data.data_dir={data_dir}"]
    for key, value in changes.items():
        if key == "overrides":
            out += ["--set", f"model.overrides={json.dumps({**RECIPE_OVERRIDES, **value})}"]
        else:
            out += ["--set", f"{key}={json.dumps(value)}"]
    return out


def combine(*changes: dict) -> dict:
    out: dict = {}
    for c in changes:
        for k, v in c.items():
            out[k] = {**out.get(k, {}), **v} if k == "overrides" else v
    return out


class Sweep:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.rows = list(csv.DictReader(a.csv.open())) if a.csv.exists() else []

    def have(self, name: str, seed: int) -> bool:
        return any(r["candidate"] == name and int(r["seed"]) == seed for r in self.rows)

    def one(self, name: str, changes: dict, seed: int) -> None:
        a = self.a
        if self.have(name, seed) or time.monotonic() - self.start > a.deadline:
            return
        run = f"{re.sub(r'[^A-Za-z0-9.]+', '-', name)}-s{seed}"
        cmd = [sys.executable, "-m", "resnetkit", "train", *flags(changes, a.device, a.data_dir)]
        cmd += ["--seed", str(seed), "--out", str(a.out), "--name", run, "--no-progress", *a.extra]
        env = dict(os.environ)
        if a.device == "cpu":  # the cores shared out between the runs at once, not oversubscribed
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // a.jobs))
        t = time.monotonic()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        if done.returncode:
            print(f"{name} seed {seed}: exit {done.returncode}: {done.stderr.strip()[-400:]}", flush=True)
            return
        last = json.loads((a.out / run / "summary.json").read_text())["last"]
        row = {
            "candidate": name,
            "seed": seed,
            "val_top1": last["eval_top1"],
            "train_top1": round(last["train_top1"], 4),
            "steps": last["step"],
            "seconds": round(time.monotonic() - t, 1),
            "changes": json.dumps(changes),
        }
        with self.lock:
            self.rows.append(row)
            fd, tmp = tempfile.mkstemp(dir=a.csv.parent, suffix=".tmp")
            with os.fdopen(fd, "w", newline="") as fh:
                w = csv.DictWriter(fh, FIELDS)
                w.writeheader()
                w.writerows(self.rows)
            os.replace(tmp, a.csv)
        print(json.dumps(row), flush=True)

    def phase(self, candidates: dict[str, dict], base: dict) -> None:
        # Seed-major, so a sweep cut short by its deadline has every candidate's first seeds.
        jobs = [(n, combine(base, c), s) for s in self.a.seeds for n, c in candidates.items()]
        with ThreadPoolExecutor(self.a.jobs) as pool:
            list(pool.map(lambda j: self.one(*j), jobs))

    def means(self) -> dict[str, float]:
        by: dict[str, list[float]] = {}
        for r in self.rows:
            by.setdefault(r["candidate"], []).append(float(r["val_top1"]))
        return {k: statistics.mean(v) for k, v in by.items() if len(v) == len(self.a.seeds)}


def _keys(names: list[str]) -> set[str]:
    out: set[str] = set()
    for n in names:
        out |= {k for k in CANDIDATES[n] if k != "epochs"} - {"overrides"}
        out |= set(CANDIDATES[n].get("overrides", {}))
    return out


def run(a: argparse.Namespace) -> None:
    a.out.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(a)
    if a.phase in PHASES:
        candidates, base = PHASES[a.phase]
        unknown = set(a.only or ()) - set(candidates)
        if unknown:
            have = ", ".join(candidates)
            print(f"--only: no candidate {sorted(unknown)} in phase {a.phase} (it has: {have})", file=sys.stderr)
            raise SystemExit(2)
        sweep.phase({n: c for n, c in candidates.items() if not a.only or n in a.only}, base)
        return
    sweep.phase(CANDIDATES, V5_BASE)
    means = sweep.means()
    if BASELINE not in means:
        return
    better = sorted(
        (n for n, m in means.items() if n.startswith("8ep ") and m > means[BASELINE]), key=lambda n: -means[n]
    )
    print("beat the baseline:", better, flush=True)
    # Greedy: the best first, then each next one that changes keys not yet changed (lr 0.3 and 0.4
    # do not combine).
    chosen: list[str] = []
    for n in better:
        if not _keys([n]) & _keys(chosen):
            chosen.append(n)
    second: dict[str, dict] = {}
    for k in sorted({2, 3, len(chosen)}):
        if 1 < k <= len(chosen):
            second[" + ".join(chosen[:k])] = combine(*(CANDIDATES[n] for n in chosen[:k]))
    for n in chosen[:1]:
        second[f"{n} at 9ep"] = combine(CANDIDATES[n], {"epochs": 9})
    sweep.phase(second, V5_BASE)


def report(a: argparse.Namespace) -> None:
    rows = list(csv.DictReader(a.csv.open()))
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["candidate"], []).append(r)
    print("| candidate | seeds | val top-1 (each) | mean | min | train top-1 (mean) |")
    print("|---|---:|---|---:|---:|---:|")
    for name, rs in sorted(by.items(), key=lambda kv: -statistics.mean(float(r["val_top1"]) for r in kv[1])):
        rs.sort(key=lambda r: int(r["seed"]))
        acc = [100 * float(r["val_top1"]) for r in rs]
        train = statistics.mean(100 * float(r["train_top1"]) for r in rs)
        each = ", ".join(f"{x:.2f}" for x in acc)
        print(f"| {name} | {len(rs)} | {each} | {statistics.mean(acc):.2f} | {min(acc):.2f} | {train:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--phase", choices=["v5", *PHASES], default="v5", help="whose candidates (v5: the GPU sweep's)")
    r.add_argument("--only", nargs="+", metavar="NAME", help="these candidates of the phase only (v6 on)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--jobs", type=int, default=8)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    r.add_argument("--data-dir")
    r.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no run starts")
    r.add_argument("--out", type=Path, default=Path("runs/fast_recipe_sweep"))
    r.add_argument("--csv", type=Path, required=True)
    r.add_argument("--extra", action="append", default=[], help="more train flags (a smoke test: --max-steps 5)")
    s = sub.add_parser("report")
    s.add_argument("--csv", type=Path, required=True)
    a = p.parse_args()
    run(a) if a.what == "run" else report(a)


if __name__ == "__main__":
    main()
