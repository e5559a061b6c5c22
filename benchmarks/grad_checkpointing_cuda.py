"""Activation checkpointing on a CUDA device: peak memory and step time of a training step with
and without it, and the memory guard's estimate beside each (the CPU table is
``grad_checkpointing.py``'s; there peak RSS includes glibc's retained heap, here the caching
allocator's own counters say exactly what the step's tensors took).

    python benchmarks/grad_checkpointing_cuda.py [--steps 5] [--json results/grad_checkpointing_cuda.json]

Each configuration runs in a fresh process. The step is resnetkit's: SGD with momentum, the
precision ``auto`` means on the device (bf16 autocast on a GPU with bf16), channels_last; two
warm-up steps, then ``--steps`` timed between CUDA synchronisations. ``peak_allocated`` is
``torch.cuda.max_memory_allocated`` over the timed steps (the tensors: weights, gradients, momentum,
activations, workspaces), ``peak_reserved`` the caching allocator's reservation, which is what the
guard extrapolates. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from types import SimpleNamespace

CASES = [  # (model, batch, image size): the issue's three
    ("preact_resnet1001", 128, 32),
    ("resnet1202", 128, 32),
    ("resnet50", 32, 224),
]


def measure(model_name: str, batch: int, size: int, checkpointing: bool, steps: int) -> dict:
    import torch

    from resnetkit.models import create_model
    from resnetkit.train import TrainConfig
    from resnetkit.train.engine import build_task
    from resnetkit.train.memory_guard import estimate_step_memory
    from resnetkit.train.precision import Precision

    device = torch.device("cuda")
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=3).to(device, memory_format=torch.channels_last)
    model.set_grad_checkpointing(checkpointing)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    precision = Precision("auto", device)
    task = build_task(TrainConfig.from_dict({"model": {"name": model_name}}))
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    trainer = SimpleNamespace(model=model, task=task, device=device, precision=precision, optimizer=optimizer)
    need = estimate_step_memory(trainer, x, y, batch)

    def step() -> None:
        with precision.autocast():
            loss = task.loss(task.forward(model, x, y), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return {
        "model": model_name,
        "batch": batch,
        "image_size": size,
        "grad_checkpointing": checkpointing,
        "precision": precision.mode,
        "device": torch.cuda.get_device_name(),
        "step_seconds": (time.perf_counter() - start) / steps,
        "peak_allocated": torch.cuda.max_memory_allocated(),
        "peak_reserved": torch.cuda.max_memory_reserved(),
        "estimated_peak": need.peak if need else None,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| model | batch, size | checkpointing | peak allocated | peak reserved | guard's estimate | step (ms) "
        "| memory vs plain | time vs plain |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    plain: dict[str, dict] = {}
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | | {'on' if r['grad_checkpointing'] else 'off'} | error: {r['error']} |||||")
            continue
        ref = plain.get(r["model"]) if r["grad_checkpointing"] else None
        if not r["grad_checkpointing"]:
            plain[r["model"]] = r
        mem = f"{ref['peak_allocated'] / r['peak_allocated']:.2f}x less" if ref else ""
        slow = f"{r['step_seconds'] / ref['step_seconds']:.2f}x" if ref else ""
        est = f"{r['estimated_peak'] / 2**30:.2f} GB" if r["estimated_peak"] else "-"
        lines.append(
            f"| {r['model']} | {r['batch']}, {r['image_size']}px | {'on' if r['grad_checkpointing'] else 'off'} | "
            f"{r['peak_allocated'] / 2**30:.2f} GB | {r['peak_reserved'] / 2**30:.2f} GB | {est} | "
            f"{1000 * r['step_seconds']:.0f} | {mem} | {slow} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--only", help="one model of the table")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        model, batch, size, ckpt, steps = a.child
        print(json.dumps(measure(model, int(batch), int(size), ckpt == "1", int(steps))))
        return
    results = []
    for model, batch, size in CASES:
        if a.only and model != a.only:
            continue
        for ckpt in (False, True):
            cmd = [sys.executable, __file__, "--child", model, str(batch), str(size), str(int(ckpt)), str(a.steps)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                results.append({"model": model, "grad_checkpointing": ckpt, "error": proc.stderr.strip()[-300:]})
            else:
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
