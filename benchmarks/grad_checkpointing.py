"""Peak memory and step time of a training step with and without activation checkpointing, and
the memory guard's estimate beside each, on the CPU or a CUDA device.

    python benchmarks/grad_checkpointing.py [--steps 2] [--json results/grad_checkpointing.json]
    python benchmarks/grad_checkpointing.py --only preact_resnet1001 --steps 2
    python benchmarks/grad_checkpointing.py --allocator return --steps 2 --json results/grad_checkpointing_return.json
    python benchmarks/grad_checkpointing.py --device cuda --steps 5 --json results/grad_checkpointing_cuda.json
    python benchmarks/grad_checkpointing.py --only preact_resnet1001 --variants reentrant general
    python benchmarks/grad_checkpointing.py --only preact_resnet1001 --batch-size 2 --image-size 8 \
        --variants reentrant general --steps 5 --threads 1

``--variants`` picks PyTorch's checkpoint implementations to time beside the plain step:
``reentrant`` (the default: what ``train --grad-checkpointing`` uses) and ``general`` (the
non-reentrant one, ``model.set_grad_checkpointing(True)``'s default; models/stage.py says why).
``--batch-size``/``--image-size`` replace a case's; tiny ones on one CPU thread make a step bound
by calls rather than arithmetic, as 32px steps are on a GPU: a proxy for the GPU's ratio.

Each configuration runs in a fresh process, so its peak is its own. The step is resnetkit's: SGD
with momentum, the precision ``auto`` means on the device (bf16 autocast where it is native),
channels_last; warm-up steps (one on the CPU, two on CUDA), then ``--steps`` timed. On the CPU the
peak is the process's resident memory (VmHWM: PyTorch, the model, gradients, optimizer state,
activations), beside the resident memory before the first step (what no setting of the step
changes); malloc holds freed memory as ``train`` has it on the CPU, and returns it where the memory
guard would have it returned (a step estimated above half the memory available), or always with
``--allocator return``. On CUDA it is
``torch.cuda.max_memory_allocated`` over the timed steps (the tensors: weights, gradients, momentum,
activations, workspaces) beside the caching allocator's reservation, which is what the guard
extrapolates. A configuration that the guard says would not fit in what is available is reported,
not run, so a shared machine is not pushed into its OOM killer. Nothing here is asserted.
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


def measure(
    model_name: str, batch: int, size: int, in_chans: int, variant: str, steps: int, dev: str, allocator: str
) -> dict:
    """One configuration, in this process (the child); `variant`: off, reentrant or general."""
    import torch

    from resnetkit.models import create_model
    from resnetkit.runtime.memory import (
        current_rss,
        format_size,
        hold_freed_memory,
        memory_budget,
        peak_memory,
        reset_peak,
        return_freed_memory,
    )
    from resnetkit.train import TrainConfig
    from resnetkit.train.engine import build_task
    from resnetkit.train.memory_guard import TIGHT, estimate_step_memory
    from resnetkit.train.precision import Precision

    device = torch.device(dev)
    cuda = device.type == "cuda"
    if not cuda:
        hold_freed_memory()  # as train runs on the CPU
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=in_chans)
    model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    checkpointing = variant != "off"
    model.set_grad_checkpointing(checkpointing, reentrant=variant == "reentrant")
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    precision = Precision("auto", device)
    task = build_task(TrainConfig.from_dict({"model": {"name": model_name}}))
    x = torch.randn(batch, in_chans, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    before = current_rss()
    trainer = SimpleNamespace(model=model, task=task, device=device, precision=precision, optimizer=optimizer)
    need = estimate_step_memory(trainer, x, y, batch)
    budget = memory_budget(device)
    result = {
        "model": model_name,
        "batch": batch,
        "image_size": size,
        "grad_checkpointing": checkpointing,
        "variant": variant,
        "precision": precision.mode,
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu, {torch.get_num_threads()} threads",
        "estimated_peak": need.peak if need else None,
    }
    if need is not None and budget is not None and need.peak > budget.limit:
        available = f"{format_size(budget.limit)} available ({budget.source})"
        return result | {"skipped": f"needs about {format_size(need.peak)}, {available}"}
    # As the guard does in train: a tight CPU step returns its freed activations to the OS.
    tight = not cuda and need is not None and budget is not None and need.peak > TIGHT * budget.limit
    result["freed_memory_returned"] = (tight or allocator == "return") and not cuda and return_freed_memory()

    def step() -> None:
        with precision.autocast():
            loss = task.loss(task.forward(model, x, y), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2 if cuda else 1):
        step()
    reset_peak(device)  # the probes' peaks are smaller; measure the steps' own (reset_peak synchronizes)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    result["step_seconds"] = times
    if cuda:
        return result | {
            "peak": torch.cuda.max_memory_allocated(device),
            "peak_reserved": torch.cuda.max_memory_reserved(device),
        }
    return result | {"peak": peak_memory(device), "rss_before_step": before}


def run_case(
    model: str,
    batch: int,
    size: int,
    in_chans: int,
    variant: str,
    steps: int,
    dev: str,
    allocator: str,
    threads: int | None = None,
) -> dict:
    cmd = [sys.executable, __file__, "--child", model, str(batch), str(size), str(in_chans), variant]
    cmd += [str(steps), dev, allocator] + (["--threads", str(threads)] if threads else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        failed = {"model": model, "grad_checkpointing": variant != "off", "variant": variant}
        return failed | {"error": proc.stderr.strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    cuda = any("peak_reserved" in r for r in results)
    extra = "peak reserved" if cuda else "RSS before the step"
    peak = "peak allocated" if cuda else "peak RSS"
    lines = [
        f"| model | batch, size | checkpointing | {peak} | {extra} | guard's estimate | step (s) | memory vs plain "
        "| time vs plain |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    plain: dict[str, dict] = {}
    for r in results:
        state = f"on ({r.get('variant', 'general')})" if r["grad_checkpointing"] else "off"
        where = f"{r.get('batch')}, {r.get('image_size')}px"
        if "peak" not in r:
            lines.append(f"| {r['model']} | {where} | {state} | not run: {r.get('skipped') or r.get('error')} ||||||")
            continue
        step = sum(r["step_seconds"]) / len(r["step_seconds"])
        ref = plain.get(r["model"]) if r["grad_checkpointing"] else None
        if not r["grad_checkpointing"]:
            plain[r["model"]] = r | {"step": step}
        mem = f"{ref['peak'] / r['peak']:.2f}x less" if ref else ""
        slow = f"{step / ref['step']:.2f}x" if ref else ""
        est = f"{r['estimated_peak'] / 2**30:.2f} GB" if r["estimated_peak"] else "-"
        other = r.get("peak_reserved", r.get("rss_before_step", 0))
        lines.append(
            f"| {r['model']} | {where} | {state} | {r['peak'] / 2**30:.2f} GB | {other / 2**30:.2f} GB | {est} | "
            f"{step:.3g} | {mem} | {slow} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    p.add_argument("--only", help="one model of the table")
    p.add_argument("--json", help="write the results here")
    p.add_argument(
        "--allocator",
        choices=["guard", "return"],
        default="guard",
        help="CPU: hold freed memory unless the guard finds the step tight (as train does), or return it always "
        "(what a step gets on a machine where memory is tight)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        choices=["reentrant", "general"],
        default=["reentrant"],
        help="checkpoint implementations to time after each plain step (default: train's, reentrant)",
    )
    p.add_argument("--batch-size", type=int, help="instead of each case's batch")
    p.add_argument("--image-size", type=int, help="instead of each case's image size")
    p.add_argument("--threads", type=int, help="CPU threads in each child (default: PyTorch's)")
    p.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        model, batch, size, chans, variant, steps, dev, allocator = a.child
        if a.threads:
            import torch

            torch.set_num_threads(a.threads)
        print(json.dumps(measure(model, int(batch), int(size), int(chans), variant, int(steps), dev, allocator)))
        return
    results = []
    for model, batch, size, chans in CASES:
        if a.only and model != a.only:
            continue
        batch, size = a.batch_size or batch, a.image_size or size
        for variant in ("off", *a.variants):  # one at a time: the machine may be shared
            results.append(run_case(model, batch, size, chans, variant, a.steps, a.device, a.allocator, a.threads))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
