"""A training process for the crash test: `python crash_worker.py KILL -- resnetkit train ARGS...`.

KILL is `none`, `step:N` (SIGKILL itself right after optimizer step N) or `save:N` (SIGKILL itself
half-way through writing its N-th checkpoint, leaving a partial temp file): a kill -9 that no
handler sees, at a moment the test chooses."""

import io
import os
import signal
import sys

import torch

from resnetkit.artifacts import checkpoint as ckpt_module
from resnetkit.cli import main
from resnetkit.train import engine


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at_step(n: int) -> None:
    real = engine.Trainer._step

    def step(self, x, y):
        out = real(self, x, y)
        if self.state.step + 1 == n:  # the step being taken is the n-th
            die()
        return out

    engine.Trainer._step = step


def kill_in_save(n: int) -> None:
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < n:
            return real(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        die()

    ckpt_module.torch.save = save  # torch.save itself: in a training run only checkpoints call it


if __name__ == "__main__":
    kill, sep, *argv = sys.argv[1:]
    assert sep == "--" and argv[0] == "resnetkit"
    what, _, n = kill.partition(":")
    if what == "step":
        kill_at_step(int(n))
    elif what == "save":
        kill_in_save(int(n))
    sys.exit(main(argv[1:]))
