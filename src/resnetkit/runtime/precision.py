"""What each ``--precision`` word means: one table for training and for inference.

=====  =======================================================  ===================================================
word   training (``train``, ``finetune``: ``Precision``)        inference (``predict``, ``eval``, ``serve``)
=====  =======================================================  ===================================================
auto   bf16 autocast on CUDA with bf16, fp16 on older CUDA      the fast path in bf16 on CUDA and on CPUs with
       GPUs; bf16 on CPUs with native bf16 (AVX-512 BF16 or     native bf16, in fp32 (BatchNorm folded) elsewhere
       AMX); fp32 elsewhere
bf16   bf16 autocast                                            the fast path in bf16
fp16   fp16 autocast with loss scaling; CUDA only               (not an inference word)
int8   (not a training word)                                    the fast path in int8: OpenVINO on the CPU, static
                                                                quantization calibrated on training images
fp32   no autocast                                              the reference: the model as it is (eager PyTorch,
                                                                or an ``.onnx`` file in ONNX Runtime)
=====  =======================================================  ===================================================

Training keeps weights, optimizer state and the loss in fp32 in every mode; inference gives float32
logits in every mode. The fast path is ``resnetkit.infer.optimize_for_inference``: it builds an
engine, so the precision it is handed is the engine's, and ``fp32`` there is the folded fp32 engine
that ``auto`` reaches on CPUs without native bf16; a user's ``fp32`` never reaches it
(``is_reference``). An ``.onnx`` file runs in ONNX Runtime as exported under every inference word but
int8, which it refuses. Inference's ``auto`` picks bf16 on every CUDA device, as the fast path always has."""

from __future__ import annotations

from typing import Literal

import torch

from .device import cpu_supports_bf16

Purpose = Literal["train", "infer"]

TRAIN_PRECISIONS = ("auto", "bf16", "fp16", "fp32")
INFER_PRECISIONS = ("auto", "bf16", "int8", "fp32")
_WORDS: dict[str, tuple[str, ...]] = {"train": TRAIN_PRECISIONS, "infer": INFER_PRECISIONS}
_PURPOSE = {"train": "training", "infer": "inference"}


def validate_precision(word: str, purpose: Purpose) -> str:
    """``word`` if it is one of ``purpose``'s precision words, else a one-line ValueError."""
    words = _WORDS[purpose]
    if word not in words:
        raise ValueError(f"--precision {word!r}: {_PURPOSE[purpose]} runs one of {', '.join(words)}")
    return word


def resolve_precision(word: str, device: str | torch.device, purpose: Purpose = "train") -> str:
    """What ``word`` computes in on ``device`` (the module's table): ``auto`` resolved, every
    other word as it is once it is known valid there (fp16 only on CUDA)."""
    validate_precision(word, purpose)
    dev = torch.device(device)
    if word == "fp16" and dev.type != "cuda":
        raise ValueError("precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    if word != "auto":
        return word
    if dev.type == "cuda":
        return "bf16" if purpose == "infer" or torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_supports_bf16() else "fp32"


def is_reference(word: str) -> bool:
    """Inference: whether ``word`` runs the model as it is (``fp32``, the reference) rather than
    the fast path."""
    return validate_precision(word, "infer") == "fp32"
