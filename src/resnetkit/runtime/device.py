"""Which device a run uses, and what its CPU computes natively."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA where it is available, else the CPU; any other name as ``torch.device`` reads
    it, refused at once if it names CUDA on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: CUDA is not available on this machine")
    return device


def cpu_supports_bf16() -> bool:
    """AVX512-BF16 or AMX: native bf16 matmuls (on the benchmarks' AVX512-BF16 host, a bf16 matmul
    peak of 408 GFLOP/s against 154 in fp32: benchmarks/README.md); without them bf16 runs emulated."""
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )
