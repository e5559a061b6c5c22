"""A stage: residual units run in sequence, optionally with activation checkpointing.

Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost",
arXiv:1604.06174) keeps only the input of each segment of units during the forward and recomputes
the segment's activations during the backward: one extra forward for a memory that no longer grows
with the depth of a segment. A stage of ``n`` units is cut into segments of about ``sqrt(n)`` units
(the paper's §4.1 rule) rather than one unit each: checkpointing every unit still stores ``n`` unit
inputs (a 1,001-layer net's 333 inputs are a fifth of its activations, less than the 4x the unit
would save), while ``sqrt(n)``-unit segments store ``sqrt(n)`` inputs plus one segment's activations
while it is recomputed, for the same single extra forward.

Two of PyTorch's implementations serve (``reentrant``). The non-reentrant one, PyTorch's
recommended default, works with any use of autograd but runs Python hooks on every tensor the
segment saves (about 9,000 a step in a 1,001-layer net); where a step is bound by calls rather than
arithmetic they make it slow (on one CPU thread at batch 2, 8px: 2.1-2.3x the plain step against
1.4-1.5x for the reentrant one; on an H200 at 32px, where steps are launch-bound, the general
variant took 1.85-2.66x). The reentrant one recomputes inside the backward with no per-tensor
hooks, but only ``.backward()`` reaches it (not ``torch.autograd.grad``), and DDP that looks for
unused parameters and ``torch.compile`` cannot see through it. The trainer picks it where none of
those apply, for the run only; the library's default is the general one.
"""

from __future__ import annotations

import math
from typing import TypeGuard

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.utils.checkpoint import checkpoint


class Stage(nn.Sequential):
    """``nn.Sequential`` of residual units (same state_dict keys: ``layer1.0.conv1.weight``).

    ``grad_checkpointing`` is the segment length in units (0: off); it only acts in training mode
    where autograd records, so evaluation, export and gradients of a model in eval mode (Grad-CAM,
    the analyses) run the plain sequence."""

    grad_checkpointing: int = 0
    checkpoint_reentrant: bool = False  # which of PyTorch's implementations (the module docstring)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        every = self.grad_checkpointing
        if (
            not every
            or not self.training
            or not torch.is_grad_enabled()
            or torch.jit.is_tracing()
            or torch.compiler.is_exporting()
        ):
            return super().forward(x)
        units = list(self)
        for start in range(0, len(units), every):
            x = checkpoint_segment(units[start : start + every], x, self.checkpoint_reentrant)
        return x


def checkpoint_segment(units: list[nn.Module], x: torch.Tensor, reentrant: bool = False) -> torch.Tensor:
    """``units`` applied to ``x``, their activations recomputed in the backward.

    Either variant supports autocast and DDP (the reentrant one only where DDP does not look for
    unused parameters: the segment's parameters are not in the forward's graph), gives parameters
    their gradients when ``x`` needs none (a frozen stem in fine-tuning) and, with
    ``preserve_rng_state``, replays the RNG so dropout and stochastic depth draw the same masks. The
    reentrant one reaches the parameters only through an input that needs a gradient: where ``x``
    needs none, an empty tensor that does is passed beside it. The recomputation runs the units'
    forward again, so BatchNorm would update its running statistics (and its step count) twice:
    during it, each norm that tracks statistics runs at momentum 0 (the running statistics times 1
    plus the batch's times 0: exactly unchanged) and counts its step into a scratch tensor. Its
    output is the first forward's (a training-mode norm uses the batch's own statistics) and it
    saves the same tensors for the backward, as the general variant's check requires. Nothing is
    copied back, which matters where a step is launch-bound (a 1,001-layer net on a GPU: cloning and
    restoring three buffers per norm was 6,000 kernels a step)."""
    calls = 0

    def run(inp: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 1:
            return _sequence(units, inp)
        norms = [m for u in units for m in u.modules() if _tracks_statistics(m)]
        kept = [(m.momentum, m.num_batches_tracked) for m in norms]
        # A tensor, not None: SyncBatchNorm insists on a count (and momentum 0 never reads it).
        scratch = torch.zeros((), dtype=torch.long, device=inp.device)
        for m in norms:
            m.momentum, m.num_batches_tracked = 0.0, scratch
        try:  # recomputation may stop early (PyTorch stops it once the saved tensors are back)
            return _sequence(units, inp)
        finally:
            for m, (momentum, count) in zip(norms, kept, strict=True):
                m.momentum, m.num_batches_tracked = momentum, count

    if not x.requires_grad and not any(p.requires_grad for unit in units for p in unit.parameters()):
        return _sequence(units, x)  # a frozen segment on a frozen input: autograd saves nothing here
    if reentrant:
        anchor = () if x.requires_grad else (x.new_empty(0).requires_grad_(),)
        out = checkpoint(lambda inp, *_: run(inp), x, *anchor, use_reentrant=True, preserve_rng_state=True)
    else:
        out = checkpoint(run, x, use_reentrant=False, preserve_rng_state=True)
    assert isinstance(out, torch.Tensor)
    return out


def _tracks_statistics(m: nn.Module) -> TypeGuard[_NormBase]:
    """A norm in training mode that would update running statistics (BatchNorm, SyncBatchNorm);
    one in eval mode (frozen in fine-tuning) reads them and is left alone."""
    return isinstance(m, _NormBase) and m.training and m.track_running_stats


def _sequence(units: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for unit in units:
        x = unit(x)
    return x


def segment_length(num_units: int, every: int | None) -> int:
    """Units per checkpointed segment: ``every``, or about ``sqrt(num_units)`` (Chen et al. §4.1)."""
    if every is not None:
        if every < 1:
            raise ValueError(f"grad checkpointing every={every}: must be at least 1 unit")
        return every
    return math.isqrt(max(num_units, 1) - 1) + 1  # ceil(sqrt(n))


def set_grad_checkpointing(
    module: nn.Module, enable: bool = True, every: int | None = None, *, reentrant: bool = False
) -> int:
    """Turn activation checkpointing on (or off) in every ``Stage`` inside ``module``: a
    classifier, a ``features_only`` backbone, or a dense model around one. ``reentrant``: PyTorch's
    reentrant implementation, fewer calls a step but for ``.backward()`` only (the module
    docstring). Returns the number of stages set; a module without any cannot checkpoint, and
    says so."""
    stages = [m for m in module.modules() if isinstance(m, Stage)]
    if not stages:
        raise ValueError(f"{type(module).__name__} has no resnetkit stages: activation checkpointing does not apply")
    for stage in stages:
        stage.grad_checkpointing = segment_length(len(stage), every) if enable else 0
        stage.checkpoint_reentrant = reentrant
    return len(stages)
