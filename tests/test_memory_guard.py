"""The memory guard: before the first step it estimates the step's peak memory from two probes and
refuses, one line and exit 2, a run that would exceed what the process may use. Checked against a
real step's measured peak, under the RESNETKIT_MEMORY_LIMIT override, and in a real ``resnetkit
train`` process under an RLIMIT_DATA that the unguarded run dies of (a traceback, exit 1).

RLIMIT_DATA, not RLIMIT_AS: PyTorch reserves address space it never touches (thread arenas,
oneDNN), so an address-space limit fails at import or at random, not where the memory is used;
a data limit fails where the activations are allocated, as an OOM kill would, but with an error
the test can see. A cgroup limit (what kills a process in a container) needs privileges the
tests do not have; the guard reads it (runtime/memory.py) and the override stands in for it."""

import os
import re
import resource
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from resnetkit import create_model
from resnetkit.cli import main
from resnetkit.runtime.memory import (
    MEMORY_LIMIT_ENV,
    current_rss,
    memory_budget,
    parse_size,
    peak_memory,
    reset_peak,
    trim_freed_memory,
)
from resnetkit.train import TrainConfig
from resnetkit.train.engine import build_task
from resnetkit.train.memory_guard import (
    CPU_OUT_OF_MEMORY,
    StepMemory,
    check_fits,
    estimate_step_memory,
    optimizer_state_bytes,
)
from resnetkit.train.precision import Precision

CPU = torch.device("cpu")


def test_sizes_parse_in_binary_units_and_bad_ones_name_the_variable():
    assert parse_size("2G") == 2 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("800MB") == 800 * 2**20 and parse_size("12345") == 12345
    with pytest.raises(ValueError, match=MEMORY_LIMIT_ENV):
        parse_size("lots")


def test_budget_is_the_override_or_what_the_machine_has(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "3G")
    assert memory_budget(CPU).limit == 3 * 2**30 and memory_budget(CPU).source == MEMORY_LIMIT_ENV
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    budget = memory_budget(CPU)
    assert budget is not None and budget.limit > current_rss()


def _estimate_against_a_real_step() -> tuple[StepMemory, int, int]:
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_chans=1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert optimizer_state_bytes(optimizer) == sum(p.numel() * 4 for p in model.parameters())
    cfg = TrainConfig.from_dict({"precision": "fp32"})
    trainer = SimpleNamespace(
        model=model, task=build_task(cfg), device=CPU, precision=Precision("fp32", CPU), optimizer=optimizer
    )
    x, y = torch.randn(192, 1, 28, 28), torch.randint(0, 10, (192,))
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    rng = torch.get_rng_state()
    trim_freed_memory()
    before = current_rss()
    need = estimate_step_memory(trainer, x, y, 192)
    assert need is not None and [n for n, _ in need.probes] == [24, 48]
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    assert all(p.grad is None for p in model.parameters()) and torch.equal(torch.get_rng_state(), rng)

    reset_peak(CPU)
    trainer.task.loss(trainer.task.forward(model, x, y), y).backward()
    optimizer.step()
    return need, peak_memory(CPU), before


def test_estimate_matches_a_real_steps_peak_and_the_probes_leave_no_trace():
    """In a fresh process: the resident set a step adds depends on what the allocator already holds,
    and in a test worker that is whatever the tests before it left (the ratio was 0.74 in one full
    run, 1.08-1.18 alone), which is the test's history, not the estimate's error."""
    code = (
        "import sys, torch; torch.set_num_threads(1); sys.path.insert(0, sys.argv[1]);"
        "import test_memory_guard as t; need, measured, before = t._estimate_against_a_real_step();"
        "print(need.peak, measured, before)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, os.path.dirname(__file__)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    peak, measured, before = map(int, out.stdout.split()[-3:])
    # What the step adds to the process, estimated against measured (~300 MB of activations here).
    ratio = (peak - before) / (measured - before)
    assert 0.75 < ratio < 1.5, (peak, measured, before)


@pytest.mark.parametrize(
    "message",
    [
        "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory",
        "could not create a primitive",  # oneDNN's words for the same, seen in CI under RLIMIT_DATA
    ],
)
def test_a_probe_that_runs_out_of_memory_is_a_refusal_and_leaves_no_trace(message):
    """Under a tight limit the probe itself may fail to allocate: that is the answer (does not fit),
    not a traceback; the model is left as it was."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_chans=1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    task = build_task(TrainConfig.from_dict({"precision": "fp32"}))
    forward = task.forward

    def failing_forward(m, x, y):
        if len(x) > 16:  # the second probe (32 of 128 images) cannot allocate
            raise RuntimeError(message)
        return forward(m, x, y)

    task.forward = failing_forward
    trainer = SimpleNamespace(model=model, task=task, device=CPU, precision=Precision("fp32", CPU), optimizer=optimizer)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    need = estimate_step_memory(trainer, x, y, 128)
    assert need is not None and need.exhausted == 32 and [n for n, _ in need.probes] == [16]
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    assert all(p.grad is None for p in model.parameters())
    from resnetkit.runtime.memory import Budget

    text = check_fits(need, Budget(2**30, "RLIMIT_DATA"), 1)
    assert text is not None and "\n" not in text and "32 of the step's 128 images" in text and "RLIMIT_DATA" in text

    def other_error(m, x, y):
        raise RuntimeError("shapes do not match")

    task.forward = other_error  # not a memory failure: not swallowed
    with pytest.raises(RuntimeError, match="shapes"):
        estimate_step_memory(trainer, x, y, 128)


def test_refusal_says_how_much_and_what_to_do():
    from resnetkit.runtime.memory import Budget

    need = StepMemory(3 * 2**30, ((16, 2**30), (32, 2**30 + 2**28)), 128)
    assert check_fits(need, Budget(4 * 2**30, "x"), 1) is None
    text = check_fits(need, Budget(2**31, "cgroup limit /sys/fs/cgroup/memory.max"), 1)
    assert text is not None and "\n" not in text
    for words in ("3.0 GB", "2.0 GB", "cgroup limit", "--grad-checkpointing", "--batch-size", "--no-memory-guard"):
        assert words in text
    # The estimate can be low (13% on a GPU): a step that fits only without the 15% margin is refused.
    assert check_fits(need, Budget(int(3.4 * 2**30), "x"), 1) is not None
    assert check_fits(need, Budget(int(3.5 * 2**30), "x"), 1) is None
    assert "15% more is kept free" in check_fits(need, Budget(int(3.4 * 2**30), "x"), 1)


def _train_args(tmp_path, model: str, batch: int) -> list[str]:
    args = ["train", "--model", model, "--data", "digits", "--max-steps", "1", "--batch-size", str(batch)]
    return [*args, "--precision", "fp32", "--out", str(tmp_path), "--no-progress"]


def test_override_below_the_need_refuses_in_one_line_and_no_guard_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(current_rss() + 2**20))  # 1 MB more than the process has
    args = _train_args(tmp_path, "resnet20", 256)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("resnetkit train: error: a training step needs about"), err
    assert f"({MEMORY_LIMIT_ENV})" in err[0] and "--grad-checkpointing" in err[0]
    assert main([*args, "--no-memory-guard"]) == 0


@pytest.mark.slow
def test_a_real_train_process_under_a_data_limit_refuses_instead_of_dying(tmp_path):
    """ResNet-110 on 1,024 digits needs about 1.2 GB; under a 650 MB RLIMIT_DATA the unguarded
    run dies in its first forward (exit 1 and a traceback, or a signal); the guarded one refuses after its probes
    (which fit: a quarter of the batch) with one line, exit 2."""
    limit = 650 * 2**20

    def limited():
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    def run(*extra: str) -> subprocess.CompletedProcess:
        args = [*_train_args(tmp_path, "resnet110", 1024), *extra]
        return subprocess.run(
            [sys.executable, "-m", "resnetkit", *args], preexec_fn=limited, capture_output=True, text=True, timeout=300
        )

    # Unguarded, the process dies: most often PyTorch's allocator raises (exit 1), but an
    # allocation that fails inside a native library can crash it outright (SIGSEGV, seen once in
    # five suite runs). Either way the run is lost, which is what the guard is for.
    unguarded = run("--no-memory-guard")
    died = unguarded.returncode < 0 or (
        unguarded.returncode == 1 and any(text in unguarded.stderr for text in CPU_OUT_OF_MEMORY)
    )
    assert died, (unguarded.returncode, unguarded.stderr[-2000:])
    guarded = run()
    assert guarded.returncode == 2, guarded.stderr[-2000:]
    last = guarded.stderr.strip().splitlines()[-1]
    assert last.startswith("resnetkit train: error: a training step needs") and "RLIMIT_DATA" in last
    assert "Traceback" not in guarded.stderr


@pytest.mark.slow
def test_under_nproc_rank_0_prints_the_refusal_once_and_the_launcher_exits_2(tmp_path):
    """Two real gloo workers on 127.0.0.1 (``--nproc 2``): the ranks gather the guard's verdict and
    all stop; only global rank 0 prints it, and the launcher passes the workers' exit 2 through."""
    env = {**os.environ, MEMORY_LIMIT_ENV: "1M", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "resnetkit", "train", "--nproc", "2", "--model", "resnet20", "--data", "digits"]
    cmd += ["--batch-size", "64", "--max-steps", "1", "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "a training step needs" in errors[0] and "--grad-checkpointing" in errors[0], errors
    assert "Traceback" not in proc.stderr


def test_a_tight_cpu_step_returns_freed_activations_to_the_os(tmp_path):
    """Above half the memory available (but within it) the guard fixes glibc's mmap threshold, so
    freed activations leave the process; with room to spare it leaves malloc alone (page faults
    cost small nets much of their speed). Real train processes: the setting is process-wide."""

    def run(limit: str) -> str:
        env = {**os.environ, MEMORY_LIMIT_ENV: limit, "OMP_NUM_THREADS": "1"}
        args = [*_train_args(tmp_path, "resnet20", 256), "--name", f"r{limit}"]
        proc = subprocess.run([sys.executable, "-m", "resnetkit", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout + proc.stderr

    roomy = run("64G")
    assert "memory is tight" not in roomy
    need = re.search(r"a step needs about (\d+) MB", roomy)
    assert need is not None, roomy[-2000:]
    tight = run(f"{int(int(need.group(1)) * 1.6)}M")  # the estimate is 63% of this
    assert "memory is tight, so freed activations go back to the OS" in tight


ALLOCATOR_PROBE = """
import sys, torch
from resnetkit.runtime.memory import current_rss, hold_freed_memory, return_freed_memory

def kept_after_free():  # MB of a freed 256 MB tensor still resident
    before = current_rss()
    x = torch.ones(64 * 2**20)
    del x
    return (current_rss() - before) >> 20

print(kept_after_free(), hold_freed_memory(), kept_after_free(), return_freed_memory(), kept_after_free())
"""


def test_training_holds_freed_memory_and_a_tight_step_returns_it():
    """glibc's default gives a freed 256 MB tensor back at once (its own mmap, page-faulted anew
    next time); held, it stays resident for the next step; returned, it goes back again. A fresh
    process: the setting is process-wide."""
    proc = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    default, held, kept, returned, back = proc.stdout.split()
    assert held == returned == "True"
    assert int(default) < 32 and int(kept) > 200 and int(back) < 32, proc.stdout
