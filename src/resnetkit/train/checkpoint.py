"""Checkpoints that are enough on their own: to rebuild the model, evaluate it, and resume the run
exactly (weights, optimizer, scheduler, scaler, EMA, RNG states and position). Written atomically
and readable with ``torch.load(weights_only=True)``: plain tensors, numbers and strings only."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from ..models.weights import WeightsError, atomic_write

FORMAT = "resnetkit-checkpoint/1"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": _to_lists(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def save_checkpoint(path: str | Path, **state) -> Path:
    return atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp))


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a resnetkit checkpoint (a weights file? use create_model(name, weights=...))")
    # A resumed run continues in the folder the checkpoint is in now (it may have moved, or the
    # path it was saved under may be relative to another working directory).
    ckpt["run_dir"] = str(path.parent)
    return ckpt
