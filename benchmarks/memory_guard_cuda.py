"""The memory guard on a real GPU whose memory another process holds: ``resnetkit train`` of
preact_resnet1001 at batch 128, 32px, once plain and once with ``--grad-checkpointing``, while a
second process holds all but about the midpoint of the two steps' measured peaks. The plain run
should be refused (one line, exit 2) before its first step, the checkpointed one should train.

    python benchmarks/memory_guard_cuda.py results/grad_checkpointing_cuda.json

The peaks come from ``grad_checkpointing.py --device cuda``'s JSON (peak reserved). Prints each run's exit
code, wall time and last lines. Nothing asserted: a record of what the guard did on a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MODEL = "preact_resnet1001"
CONTEXT = 1 << 30  # a CUDA context and cuDNN's handles, about, outside the caching allocator


def image_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 160), ("test", 20)):
        for cls in ("a", "b"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")


def main() -> None:
    # The checkpointed row that train runs: the reentrant variant (older files name no variant).
    rows = {
        (r["model"], r.get("variant", "reentrant" if r["grad_checkpointing"] else "off")): r
        for r in json.loads(Path(sys.argv[1]).read_text())
    }
    plain, ckpt = rows[(MODEL, "off")]["peak_reserved"], rows[(MODEL, "reentrant")]["peak_reserved"]
    leave = (plain + ckpt) // 2 + CONTEXT
    free, total = torch.cuda.mem_get_info()
    hold = free - leave
    print(
        f"{MODEL}: plain step {plain / 2**30:.2f} GB, checkpointed {ckpt / 2**30:.2f} GB; another process "
        f"holds {hold / 2**30:.1f} of {total / 2**30:.1f} GB, leaving about {leave / 2**30:.2f} GB",
        flush=True,
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import torch,time; x=torch.empty({hold}, dtype=torch.uint8, device='cuda'); "
            "print('held', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            image_folder(Path(tmp) / "data")
            for extra in ([], ["--grad-checkpointing"]):
                flags = f"--model {MODEL} --data {tmp}/data --set data.image_size=32 --batch-size 128 --epochs 1"
                flags += f" --max-steps 1 --device cuda --no-progress --out {tmp}/runs"
                cmd = [sys.executable, "-m", "resnetkit", "train", *flags.split(), *extra]
                start = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                lines = (proc.stdout + proc.stderr).strip().splitlines()
                tail = [line for line in lines[:-2] if "memory guard" in line] + lines[-2:]
                print(
                    f"train {' '.join(extra) or '(plain)'}: exit {proc.returncode} in "
                    f"{time.perf_counter() - start:.1f} s",
                    *tail,
                    sep="\n  ",
                    flush=True,
                )
    finally:
        holder.kill()


if __name__ == "__main__":
    main()
