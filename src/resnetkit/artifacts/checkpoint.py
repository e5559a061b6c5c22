"""The checkpoint format: enough on its own to rebuild the model, evaluate it, and resume the run
exactly (weights, optimizer, scheduler, scaler, EMA, RNG states and position). Written atomically
and read with ``torch.load(weights_only=True)``: plain tensors, numbers and strings only, so a
file can never run code."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..models import WeightsError, clean_state_dict
from ..models.weights import torch_load
from .atomic import atomic_write

FORMAT_NAME = "resnetkit-checkpoint"
VERSION = 1
FORMAT = f"{FORMAT_NAME}/{VERSION}"

Checkpoint = dict[str, Any]


def save_checkpoint(path: str | os.PathLike[str], **state: Any) -> Path:
    def write(tmp: str) -> None:
        # Through a Python file object, so a full disk raises OSError(ENOSPC) rather than an
        # opaque "unexpected pos" from PyTorch's C++ writer.
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)

    return atomic_write(path, write)


def format_version(obj: object) -> int | None:
    """The format version of a loaded object, or None when it is no resnetkit checkpoint."""
    if not isinstance(obj, dict):
        return None
    name, _, version = str(obj.get("format", "")).partition("/")
    return int(version) if name == FORMAT_NAME and version.isdigit() else None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """A checkpoint file, or a run folder's ``last.pt`` (where training resumes from)."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    check_archive(path)
    ckpt = torch_load(path)
    version = format_version(ckpt)
    if version is None:
        raise WeightsError(f"{path}: not a resnetkit checkpoint (a weights file? use create_model(name, weights=...))")
    if version > VERSION:
        raise WeightsError(
            f"{path}: checkpoint format {version} is newer than this resnetkit reads ({VERSION}); upgrade"
        )
    # A resumed run continues in the folder the checkpoint is in now (it may have moved, or the
    # path it was saved under may be relative to another working directory).
    ckpt["run_dir"] = str(path.parent)
    return ckpt


def check_archive(path: Path) -> None:
    """A checkpoint is PyTorch's zip archive: every member's CRC is checked before a tensor of it
    is trusted (bytes overwritten inside an intact archive would otherwise load as other weights)."""
    if not zipfile.is_zipfile(path):
        return  # the legacy format, or not a checkpoint at all: torch_load says which
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(f"{path}: a damaged checkpoint archive ({e})") from None
    if bad is not None:
        raise WeightsError(
            f"{path}: damaged: {bad} fails its CRC check; use another checkpoint (best.pt, or an older copy)"
        )


def is_checkpoint(path: Path) -> bool:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return format_version(obj) is not None


def checkpoint_weights(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    """The weights a checkpoint was evaluated with: its EMA when it kept one."""
    if ckpt.get("eval_weights") == "ema" and ckpt.get("ema"):
        return {k[len("module.") :]: v for k, v in ckpt["ema"].items() if k.startswith("module.")}
    return clean_state_dict(ckpt["model"])
