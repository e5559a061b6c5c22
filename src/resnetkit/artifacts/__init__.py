"""Everything about the files resnetkit writes and reads: atomic writes, the checkpoint format,
run folders and which checkpoint they stand for, exported weights, model cards, ``load_model``."""

from .atomic import (
    DiskFullError,
    NotWritableError,
    atomic_write,
    atomic_write_text,
    ensure_writable,
    remove_stale_temps,
)
from .cards import model_card, model_dataset, trained_tta_flip
from .checkpoint import FORMAT, Checkpoint, checkpoint_weights, is_checkpoint, load_checkpoint, save_checkpoint
from .loading import load_model, load_pretrained_into, source_architecture
from .runs import RunLog, default_run_name, new_run_dir, read_csv, run_checkpoint
from .weights import export_weights, save_weights

__all__ = [
    "FORMAT",
    "Checkpoint",
    "DiskFullError",
    "NotWritableError",
    "RunLog",
    "atomic_write",
    "atomic_write_text",
    "checkpoint_weights",
    "default_run_name",
    "ensure_writable",
    "export_weights",
    "is_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_pretrained_into",
    "model_card",
    "model_dataset",
    "new_run_dir",
    "read_csv",
    "remove_stale_temps",
    "run_checkpoint",
    "save_checkpoint",
    "save_weights",
    "source_architecture",
    "trained_tta_flip",
]
