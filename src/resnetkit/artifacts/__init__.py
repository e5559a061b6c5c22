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
from .cards import ModelCard, Splits, attach_card, model_card, model_dataset, trained_tta_flip
from .checkpoint import FORMAT, Checkpoint, checkpoint_weights, is_checkpoint, load_checkpoint, save_checkpoint
from .loading import data_defaults, load_model, load_pretrained_into, source_architecture, source_card
from .runs import RunLog, default_run_name, new_run_dir, read_csv, run_checkpoint
from .weights import export_weights, save_weights

__all__ = [
    "FORMAT",
    "Checkpoint",
    "DiskFullError",
    "ModelCard",
    "NotWritableError",
    "RunLog",
    "Splits",
    "atomic_write",
    "atomic_write_text",
    "attach_card",
    "checkpoint_weights",
    "data_defaults",
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
    "source_card",
    "trained_tta_flip",
]
