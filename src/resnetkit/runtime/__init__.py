"""The rules below every other package: which device ``auto`` means, whether the CPU has native
bf16, and what each ``--precision`` word means for training and for inference (the table is in
``resnetkit.runtime.precision``). ``train`` and ``infer`` ask here instead of each other."""

from .device import cpu_supports_bf16, resolve_device
from .precision import INFER_PRECISIONS, TRAIN_PRECISIONS, is_reference, resolve_precision, validate_precision

__all__ = [
    "INFER_PRECISIONS",
    "TRAIN_PRECISIONS",
    "cpu_supports_bf16",
    "is_reference",
    "resolve_device",
    "resolve_precision",
    "validate_precision",
]
