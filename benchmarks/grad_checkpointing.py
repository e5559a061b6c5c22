"""Peak memory and step time of a training step with and without activation checkpointing.

    python benchmarks/grad_checkpointing.py [--steps 2] [--json results/grad_checkpointing.json]
    python benchmarks/grad_checkpointing.py --only preact_resnet1001 --steps 2

Each configuration runs in a fresh process, so its peak is its own: the process's peak resident
memory (VmHWM of /proc/self/status, everything included: PyTorch, the model, gradients, optimizer
state, activations) and the resident memory before its first step (PyTorch, model, optimizer,
batch: what no setting of the step changes). The step is resnetkit's: SGD with momentum, the
precision ``auto`` means on this host, channels_last; one warm-up step, then ``--steps`` timed.
Before a configuration runs, the memory guard's estimate (``resnetkit.train.memory_guard``) is
compared with the memory available; one that would not fit is reported, not run, so a shared
machine is not pushed into its OOM killer. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from types import SimpleNamespace

# (model, batch, image size, input channels): the issue's three, He et al.'s CIFAR nets at their batch.
CASES = [
    ("preact_resnet1001", 128, 32, 3),
    ("resnet50", 32, 224, 3),
    ("resnet1202", 128, 32, 3),
]


def measure(model_name: str, batch: int, size: int, in_chans: int, checkpointing: bool, steps: int) -> dict:
    """One configuration, in this process (the child)."""
    import torch

    from resnetkit.models import create_model
    from resnetkit.runtime.memory import current_rss, format_size, memory_budget, peak_memory, reset_peak
    from resnetkit.train import TrainConfig
    from resnetkit.train.engine import build_task
    from resnetkit.train.memory_guard import estimate_step_memory
    from resnetkit.train.precision import Precision

    device = torch.device("cpu")
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=in_chans)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model.set_grad_checkpointing(checkpointing)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    precision = Precision("auto", device)
    task = build_task(TrainConfig.from_dict({"model": {"name": model_name}}))
    x = torch.randn(batch, in_chans, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    before = current_rss()
    trainer = SimpleNamespace(model=model, task=task, device=device, precision=precision, optimizer=optimizer)
    need = estimate_step_memory(trainer, x, y, batch)
    budget = memory_budget(device)
    result = {
        "model": model_name,
        "batch": batch,
        "image_size": size,
        "grad_checkpointing": checkpointing,
        "precision": precision.mode,
        "threads": torch.get_num_threads(),
        "rss_before_step": before,
        "estimated_peak": need.peak if need else None,
    }
    if need is not None and budget is not None and need.peak > budget.limit:
        available = f"{format_size(budget.limit)} available ({budget.source})"
        result["skipped"] = f"needs about {format_size(need.peak)}, {available}"
        return result
    reset_peak(device)  # the probes' peaks are smaller; measure the step's own
    times = []
    for _ in range(1 + steps):
        start = time.perf_counter()
        with precision.autocast():
            loss = task.loss(task.forward(model, x, y), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    result["step_seconds"] = times[1:]
    result["peak_rss"] = peak_memory(device)
    return result


def run_case(model: str, batch: int, size: int, in_chans: int, checkpointing: bool, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--child", model, str(batch), str(size), str(in_chans), str(int(checkpointing))]
    proc = subprocess.run([*cmd, str(steps)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"model": model, "grad_checkpointing": checkpointing, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    lines = [
        "| model | batch, size | checkpointing | peak RSS | RSS before the step | step (s) | memory vs plain "
        "| time vs plain |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    plain: dict[str, dict] = {}
    for r in results:
        where = f"{r.get('batch')}, {r.get('image_size')}px"
        if "peak_rss" not in r:
            why = r.get("skipped") or r.get("error")
            state = "on" if r["grad_checkpointing"] else "off"
            lines.append(f"| {r['model']} | {where} | {state} | not run: {why} |||||")
            continue
        step = sum(r["step_seconds"]) / len(r["step_seconds"])
        ref = plain.get(r["model"]) if r["grad_checkpointing"] else None
        if not r["grad_checkpointing"]:
            plain[r["model"]] = r | {"step": step}
        mem = f"{ref['peak_rss'] / r['peak_rss']:.2f}x less" if ref else ""
        slow = f"{step / ref['step']:.2f}x" if ref else ""
        lines.append(
            f"| {r['model']} | {where} | {'on' if r['grad_checkpointing'] else 'off'} | "
            f"{r['peak_rss'] / 2**30:.2f} GB | {r['rss_before_step'] / 2**30:.2f} GB | {step:.1f} | {mem} | {slow} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--only", help="one model of the table")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        model, batch, size, chans, ckpt, steps = a.child
        print(json.dumps(measure(model, int(batch), int(size), int(chans), ckpt == "1", int(steps))))
        return
    results = []
    for model, batch, size, chans in CASES:
        if a.only and model != a.only:
            continue
        for checkpointing in (False, True):  # one at a time: the machine is shared
            results.append(run_case(model, batch, size, chans, checkpointing, a.steps))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
