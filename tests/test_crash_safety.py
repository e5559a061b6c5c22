"""Nothing lost: a deterministic run killed with SIGKILL at chosen and at random moments (one of them
half-way through a checkpoint write), then resumed each time, ends bit for bit where an
uninterrupted run ends, and its logs (CSV files and TensorBoard scalars) are the same rows."""

import csv
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnetkit.artifacts import load_checkpoint

WORKER = Path(__file__).with_name("crash_worker.py")
STEPS = 40  # digits at batch 64: 22 steps an epoch, so the kills land in both epochs
TRAIN = [
    "resnetkit",
    "train",
    "--model",
    "resnet20",
    "--data",
    "digits",
    "--batch-size",
    "64",
    "--max-steps",
    str(STEPS),
    "--precision",
    "fp32",
    "--no-channels-last",
    "--deterministic",
    "--no-progress",
    "--checkpoint-every",
    "3",
    "--set",
    "log_every=5",
    "--set",
    "ema_decay=0.9",
    "--set",
    "data.erasing=0.25",
    "--set",
    "data.pad=1",
    "--set",
    "test_curve=true",
    "--set",
    'model.overrides={"drop_path_rate": 0.1}',
]


def _run(out: Path, name: str, kill: str = "none", timeout: float | None = None) -> int:
    """One training process (fresh, or resumed if the run has a checkpoint); SIGKILLed by itself
    (``kill``) or from outside after ``timeout`` seconds. Returns its exit code."""
    run = out / name
    argv = (
        ["resnetkit", "train", "--resume", str(run)]
        if (run / "last.pt").is_file()
        else [*TRAIN, "--out", str(out), "--name", name]
    )
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), kill, "--", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode


def _untimed_rows(path: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in csv.DictReader(path.open())
    ]


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return {
        tag: [(e.step, e.value) for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
        if "per_second" not in tag and "seconds" not in tag
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    assert _run(out, "a") == 0
    return out / "a"


def test_sigkill_at_any_moment_loses_nothing(tmp_path, uninterrupted):
    rng = random.Random(0)
    kills = [f"step:{rng.randint(2, 8)}", "save:3", f"step:{rng.randint(21, 26)}", f"step:{rng.randint(30, 38)}"]
    for kill in kills:
        assert _run(tmp_path, "b", kill) == -signal.SIGKILL, kill
    # Two more at random moments of the wall clock (the process start included): wherever they land.
    for _ in range(2):
        _run(tmp_path, "b", timeout=rng.uniform(4.0, 9.0))
    while not (tmp_path / "b" / "summary.json").is_file():
        assert _run(tmp_path, "b") == 0
    run, ref = tmp_path / "b", uninterrupted
    a, b = load_checkpoint(ref / "last.pt"), load_checkpoint(run / "last.pt")
    assert a["step"] == b["step"] == STEPS
    for part in ("model", "ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for name in ("metrics.csv", "steps.csv"):
        assert _untimed_rows(ref / name) == _untimed_rows(run / name), name
    assert _scalars(ref) == _scalars(run)
    assert not list(run.glob(".*.tmp"))  # the killed write's temp file was cleaned up on resume


def test_a_run_killed_before_its_first_checkpoint_says_how_to_start_again(tmp_path):
    assert _run(tmp_path, "c", "step:2") == -signal.SIGKILL
    assert not (tmp_path / "c" / "last.pt").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "resnetkit", "train", "--resume", str(tmp_path / "c")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "stopped before its first checkpoint" in proc.stderr and "run it again: resnetkit train" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sigterm_checkpoints_at_a_step_boundary_and_says_how_to_resume(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resnetkit",
            *TRAIN[1:],
            "--out",
            str(tmp_path),
            "--name",
            "t",
            "--max-steps",
            "100000",
            "--checkpoint-every",
            "100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "t" / "steps.csv").is_file():  # training has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM at step" in err and f"--resume {tmp_path / 't'}" in err
    ckpt = load_checkpoint(tmp_path / "t")
    assert ckpt["step"] >= 5 and ckpt["batch_in_epoch"] == ckpt["step"] % 22
