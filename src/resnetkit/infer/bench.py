"""``resnetkit bench``: inference speed of the paths a user could pick, measured in one process
against the eager fp32 NCHW baseline of the same run (speed is only ever reported as a ratio to a
baseline measured alongside it: absolute figures drift between runs and machines)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..models import ResNetBase, create_model
from ..models.profile import count_macs
from .export import OnnxClassifier, export_model
from .optimize import optimize_for_inference

Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PathResult:
    name: str
    images_per_second: float
    speedup: float  # over the eager fp32 NCHW baseline of the same run
    gflops: float  # achieved: 2 x MACs per image x images/s
    latency_ms_p50: float  # batch of 1
    latency_ms_p99: float


@dataclass
class BenchResult:
    model: str
    batch_size: int
    image_size: int
    threads: int
    baseline_ips: float
    paths: list[PathResult] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=dict)  # path -> why

    @property
    def best(self) -> PathResult:
        return max(self.paths, key=lambda p: p.images_per_second)

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "model": self.model,
            "batch_size": self.batch_size,
            "image_size": self.image_size,
            "threads": self.threads,
            "baseline_ips": self.baseline_ips,
            "best_ips": best.images_per_second,
            "best_path": best.name,
            "speedup": best.speedup,
            "paths": [p.__dict__ for p in self.paths],
            "peers": self.not_measured,
        }


def _throughput(run: Runner, x: torch.Tensor, seconds: float, warmup: int) -> float:
    with torch.inference_mode():
        for _ in range(warmup):
            run(x)
        count, start = 0, time.perf_counter()
        while True:
            run(x)
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and count >= 2:
                return count * len(x) / elapsed


def _latency(run: Runner, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    times = []
    with torch.inference_mode():
        run(x)
        for _ in range(repeats):
            start = time.perf_counter()
            run(x)
            times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]


def bench_inference(
    model_name: str = "resnet50",
    batch_size: int = 32,
    image_size: int | None = None,
    seconds: float = 3.0,
    warmup: int = 2,
    latency_repeats: int = 20,
    log: Callable[[str], None] = print,
) -> BenchResult:
    """Images/s of each path at ``batch_size``, and batch-1 latency (p50, p99 over
    ``latency_repeats`` runs), for a freshly built ``model_name`` (weights do not change speed)."""
    model: ResNetBase = create_model(model_name).eval()
    side = image_size or (32 if model.feature_info[0]["reduction"] == 1 else 224)
    x = torch.randn(batch_size, model.in_chans, side, side)
    one = x[:1]
    with torch.device("meta"):  # counted on the meta device: nothing computed
        macs = count_macs(create_model(model_name), side, model.in_chans)
    result = BenchResult(model_name, batch_size, side, torch.get_num_threads(), 0.0)
    runners: list[tuple[str, Runner]] = [
        ("eager fp32 NCHW (baseline)", model),
        ("resnetkit fp32 (BN folded, channels_last)", optimize_for_inference(model, "fp32")),
        ("resnetkit bf16 (BN folded, channels_last)", optimize_for_inference(model, "bf16")),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path, _ = export_model(model, Path(tmp) / "m.onnx", inputs=x[:2])
            runners.append(("ONNX Runtime fp32", OnnxClassifier(path)))
        except ImportError as e:
            result.not_measured["ONNX Runtime fp32"] = f"not installed ({e.name})"
        for name, run in runners:
            ips = _throughput(run, x, seconds, warmup)
            p50, p99 = _latency(run, one, latency_repeats)
            if not result.paths:
                result.baseline_ips = ips
            result.paths.append(PathResult(name, ips, ips / result.baseline_ips, 2 * macs * ips / 1e9, p50, p99))
            log(f"{name:<44} {ips:9.1f} img/s  {ips / result.baseline_ips:5.2f}x  batch-1 p50 {p50:7.2f} ms")
    for peer in ("torch.compile bf16", "ONNX Runtime int8", "OpenVINO fp32", "OpenVINO int8"):
        result.not_measured.setdefault(peer, "not measured yet")
    return result
