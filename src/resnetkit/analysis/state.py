"""Running a model for a measurement without changing it: mode, buffers and BN statistics."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def preserved_state(model: nn.Module, train: bool) -> Iterator[nn.Module]:
    """Run ``model`` in train or eval mode, then restore each submodule's mode and every buffer:
    a train-mode forward updates BN running statistics, which a measurement must not leave behind."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    model.train(train)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        # Only changed buffers are written back: an in-place write to one that the autograd graph
        # saved (eval-mode BN statistics) would invalidate a backward pass still to come.
        with torch.no_grad():
            for b, saved in buffers:
                if not torch.equal(b, saved):
                    b.copy_(saved)


def bn_calibrated(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """An eval-mode copy of ``model`` whose BN layers normalize with the statistics of ``images``.

    Per-sample input gradients need eval mode (train-mode BN couples the samples of a batch), but at
    initialization the running statistics are (0, 1) and eval-mode BN would normalize nothing; this
    copy normalizes as the train-mode forward on ``images`` would.
    """
    copied = copy.deepcopy(model)
    norms = [m for m in copied.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one pass gives exactly this batch's statistics
    if norms:
        copied.train()
        with torch.no_grad():
            copied(images)
    return copied.eval()
