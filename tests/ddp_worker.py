"""Worker for test_distributed.py, launched by torchrun: trains on digits, saves its rank's weights."""

import logging
import os
import signal
import sys
from pathlib import Path

import torch

from resnetkit.train import TrainConfig, fit
from resnetkit.train.distributed import restart_count


def config(out: str, name: str, sync_bn: bool, max_steps: int, lr: float = 0.05) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {"name": "resnet20"},
            "data": {"name": "digits", "batch_size": 64, "pad": 0, "flip": False},
            "optim": {"lr": lr, "momentum": 0.9, "weight_decay": 1e-4},
            "schedule": {"name": "cosine"},
            "max_steps": max_steps,
            "precision": "fp32",
            "channels_last": False,
            "sync_bn": sync_bn,
            "out": out,
            "run_name": name,
            "progress": False,
            "test_curve": True,
        }
    )


def main(out: str, mode: str, steps: int, lr: float) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    callbacks = []
    if mode == "kill":

        def die(step, info):  # rank 1 dies hard in epoch 2 (22 steps an epoch) of its first life
            if restart_count() == 0 and int(os.environ["RANK"]) == 1 and step == 30:
                os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(die)
    result = fit(config(out, mode, sync_bn=mode == "sync", max_steps=steps, lr=lr), callbacks=callbacks)
    torch.save(result.model.state_dict(), Path(out) / f"{mode}-rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
