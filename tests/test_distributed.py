"""DDP on PyTorch's own engine: two gloo processes on 127.0.0.1, launched by real torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnetkit.train import fit

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import config

WORKER = Path(__file__).parent / "ddp_worker.py"


def _torchrun(*args, timeout=240):
    # TORCH_DISABLE_SHARE_RDZV_TCP_STORE: restarts need it (pytorch/pytorch#135712; README, "Distributed").
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


# Two processes sum in another order than one: after one step the weights agree to ~4e-7, and
# training amplifies that rounding with the lr (measured after 3 steps: 8e-6 at lr 0.05, 2.5e-6 at 0.01).
SYNC_STEPS, SYNC_LR = 3, 0.01


def test_two_ranks_agree_and_match_one_process_with_sync_bn(tmp_path):
    proc = _torchrun(WORKER, tmp_path, "sync", SYNC_STEPS, SYNC_LR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"sync-rank{r}.pt") for r in (0, 1))
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0, msg=f"ranks differ at {k}")

    # The one-process reference: PyTorch 2.13's fp32 CPU BatchNorm backward on this batch of 64 is
    # coarse at one thread count or the other, depending on the CPU's kernels: with AVX-512, 1
    # thread is off by 0.7% in layer3's BN parameters against float64 and 2 threads by 2.5e-6; on
    # an AVX2-only CPU, 2 threads are off by 3.8% and 1 thread by 4e-6. DDP must match the accurate one.
    def reference_on(n: int):
        threads = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fit(config(str(tmp_path), f"single{n}", sync_bn=False, max_steps=SYNC_STEPS, lr=SYNC_LR))
        finally:
            torch.set_num_threads(threads)

    def worst(single):
        return max((r0[k] - single[k]).abs().max().item() for k in r0)

    reference = min((reference_on(n) for n in (1, 2)), key=lambda r: worst(r.model.state_dict()))
    single = reference.model.state_dict()
    for k in r0:
        torch.testing.assert_close(r0[k], single[k], rtol=1e-4, atol=1e-5, msg=f"DDP and one process differ at {k}")
    summary = json.loads((tmp_path / "sync" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == SYNC_STEPS
    # Metrics are summed over the ranks: the logged loss and accuracies are the global batch's and
    # the whole evaluation set's, as one process logs them.
    for key in ("train_loss", "train_top1", "eval_loss", "eval_top1"):
        assert summary["last"][key] == pytest.approx(reference.last[key], rel=1e-3, abs=1e-3), key
    # Only rank 0 writes: one run folder, one TensorBoard event file, one row per logging point.
    assert len(list((tmp_path / "sync" / "tensorboard").iterdir())) == 1
    steps = (tmp_path / "sync" / "steps.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in steps] == ["step", str(SYNC_STEPS)]


def test_killed_worker_restarts_from_last_checkpoint_and_finishes(tmp_path):
    proc = _torchrun("--max-restarts=1", WORKER, tmp_path, "kill", 44, 0.05)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torchrun restart 1: resuming from" in proc.stderr
    summary = json.loads((tmp_path / "kill" / "summary.json").read_text())
    assert summary["steps"] == 44
    r0, r1 = (torch.load(tmp_path / f"kill-rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)


def test_cli_nproc_shortcut(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "resnetkit",
        "train",
        "--nproc",
        "2",
        "--data",
        "digits",
        "--max-steps",
        "3",
        "--batch-size",
        "32",
        "--precision",
        "fp32",
        "--no-progress",
        "--out",
        str(tmp_path),
        "--name",
        "cli",
        "--set",
        "data.pad=1",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 3


def test_nproc_gives_every_worker_and_restart_one_named_folder(monkeypatch, tmp_path):
    from resnetkit.cli import main

    launched = {}
    monkeypatch.setattr(
        "resnetkit.train.launch.launch_local",
        lambda nproc, argv, restarts: launched.update(nproc=nproc, argv=argv, restarts=restarts) or 0,
    )
    assert main(["train", "--nproc", "2", "--max-restarts", "1", "--data", "digits", "--out", str(tmp_path)]) == 0
    argv = launched["argv"]
    assert (
        (launched["nproc"], launched["restarts"]) == (2, 1) and "--nproc" not in argv and "--max-restarts" not in argv
    )
    assert argv[-2] == "--name" and argv[-1].startswith("resnet20-digits-")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_meet_through_a_rendezvous_endpoint(tmp_path):
    # What two machines run, on one: torchrun --nnodes=2 --rdzv-endpoint=HOST:PORT, one process each.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
        "--rdzv-id=resnetkit-test",
        "-m",
        "resnetkit",
        "train",
        "--data",
        "digits",
        "--max-steps",
        "3",
        "--batch-size",
        "32",
        "--precision",
        "fp32",
        "--no-progress",
        "--out",
        str(tmp_path),
        "--set",
        "data.pad=1",
    ]
    nodes = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [node.communicate(timeout=240) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    # One run folder, named after the rendezvous id so restarts find it, written by global rank 0 only.
    (run,) = tmp_path.iterdir()
    assert run.name == "torchrun-resnetkit-test"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 3
    assert sum("epoch 1/1" in err for _, err in outputs) == 1, "only global rank 0 reports progress"


def test_global_batch_must_divide(tmp_path, monkeypatch):
    from resnetkit.tasks import Classification
    from resnetkit.train.distributed import DistContext
    from resnetkit.train.loaders import build_loaders

    with pytest.raises(ValueError, match="global batch: it must divide by the 3 processes"):
        build_loaders(config(str(tmp_path), "x", False, 1), DistContext(0, 3, 0), torch.device("cpu"), Classification())


def test_ranks_that_would_resume_from_different_steps_refuse_to_start(tmp_path):
    from types import SimpleNamespace

    from resnetkit.train.engine import Trainer

    class TwoRanks:
        def gather(self, value):  # rank 1 read an older checkpoint from its own disk
            return [value, 5]

    trainer = SimpleNamespace(ctx=TwoRanks(), state=SimpleNamespace(step=9), cfg=SimpleNamespace(out=str(tmp_path)))
    with pytest.raises(RuntimeError, match=r"different steps \[9, 5\].*shared filesystem"):
        Trainer._check_same_start(trainer)
    trainer.ctx.gather = lambda value: [value, value]
    Trainer._check_same_start(trainer)


def test_detection_under_ddp_measures_the_whole_test_set(tmp_path):
    """Each of two processes scores its share of the test scenes; the gathered mAP is that of all
    of them, the figure one process measures on the same checkpoint."""
    from resnetkit.cli import main

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    scenes = ["--set", "data.scenes.size=64", "--set", "data.scenes.max_scale=32"]
    scenes += ["--set", "data.scenes.train_scenes=32", "--set", "data.scenes.test_scenes=11"]
    cmd = [sys.executable, "-m", "resnetkit", "train", "--nproc", "2", "--task", "detection"]
    cmd += ["--model", "fcos_resnet18_fpn", "--data", "fashion-mnist-scenes", "--max-steps", "4", "--batch-size", "8"]
    cmd += ["--lr", "0.01", "--precision", "fp32", "--no-progress", "--out", str(tmp_path), "--name", "det"]
    cmd += ["--set", "model.overrides.fpn_channels=16", "--set", "model.overrides.score_thresh=0.0", *scenes]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "det" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["test"]["n"] == 11
    out = tmp_path / "eval"
    assert main(["eval", str(tmp_path / "det"), "--out", str(out)]) == 0
    single = json.loads((out / "eval.json").read_text())
    assert single["n"] == 11 and single["detections"] == summary["test"]["detections"] > 0
    assert single["map"] == pytest.approx(summary["test"]["map"], abs=1e-6)


def test_a_rank_that_fails_to_set_up_leaves_the_process_group(tmp_path, monkeypatch):
    """A gloo group still alive at interpreter exit can abort the process in teardown (SIGABRT)
    instead of letting it exit with its one-line error: a Trainer that fails after joining the
    group leaves it before the error propagates."""
    from resnetkit.train import engine
    from resnetkit.train.distributed import DistContext

    closed = []

    class Group(DistContext):
        def close(self, finished):
            closed.append(finished)

    monkeypatch.setattr(engine, "init_distributed", lambda device: (Group(0, 1, 0, True), torch.device("cpu")))
    (tmp_path / "a-file").write_text("")  # --out names a file: the set-up refuses it
    with pytest.raises(Exception, match="a-file"):
        engine.Trainer(config(str(tmp_path / "a-file"), "x", False, 1))
    assert closed == [False]
