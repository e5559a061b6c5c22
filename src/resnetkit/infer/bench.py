"""``resnetkit bench --task infer``: inference speed of resnetkit's paths and of the peers a user
would pick instead, measured in one process against the eager fp32 NCHW baseline of the same run
(speed is only ever reported as a ratio to a baseline measured alongside it: absolute figures
drift between runs and machines), with the machine's matmul peak measured in the same run."""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..models import ResNetBase, create_model, to_channels_last
from ..models.profile import count_macs
from ..models.weights import first_line
from ..runtime import cpu_supports_bf16, resolve_precision
from .export import INPUT, OnnxClassifier, fold_batchnorm, write_onnx
from .openvino_model import core, openvino_available
from .optimize import optimize_for_inference
from .preprocess import input_size
from .quantize import quantize_onnx

Runner = Callable[[torch.Tensor], Any]


@dataclass
class PathResult:
    name: str
    kind: str  # "baseline", "resnetkit" or "peer"
    images_per_second: float
    speedup: float  # over the eager fp32 NCHW baseline of the same run
    gflops: float  # achieved: 2 x MACs per image x images/s
    of_bf16_peak: float  # gflops / the bf16 matmul peak measured in this run
    of_int8_limit: float  # gflops / (2 x that peak): VNNI's int8 rate, twice bf16's per instruction
    latency_ms_p50: float  # batch of 1
    latency_ms_p99: float


@dataclass
class BenchResult:
    model: str
    batch_size: int
    image_size: int
    threads: int
    gmacs_per_image: float
    peak_gflops: dict[str, float]
    paths: list[PathResult] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=dict)  # path -> why
    auto_path: str = ""

    @property
    def baseline_ips(self) -> float:
        return self.paths[0].images_per_second

    @property
    def best(self) -> PathResult:
        return max((p for p in self.paths if p.kind == "resnetkit"), key=lambda p: p.images_per_second)

    @property
    def fastest_peer(self) -> PathResult | None:
        peers = [p for p in self.paths if p.kind == "peer"]
        return max(peers, key=lambda p: p.images_per_second) if peers else None

    def as_dict(self) -> dict[str, Any]:
        best, peer = self.best, self.fastest_peer
        peers: dict[str, Any] = {
            p.name: {"images_per_second": p.images_per_second, "speedup": p.speedup}
            for p in self.paths
            if p.kind == "peer"
        }
        peers |= {
            name: {"not_measured": why} for name, why in self.not_measured.items() if not name.startswith("resnetkit")
        }
        return {
            "model": self.model,
            "batch_size": self.batch_size,
            "image_size": self.image_size,
            "threads": self.threads,
            "gmacs_per_image": self.gmacs_per_image,
            "peak_gflops": self.peak_gflops,
            "baseline_ips": self.baseline_ips,
            "best_ips": best.images_per_second,
            "best_path": best.name,
            "speedup": best.speedup,
            "auto_path": self.auto_path,
            "fastest_peer": peer.name if peer else None,
            "vs_fastest_peer": best.images_per_second / peer.images_per_second if peer else None,
            "paths": [p.__dict__ for p in self.paths],
            "peers": peers,
            "not_measured": self.not_measured,
        }


def matmul_peak(
    dtype: torch.dtype, sizes: tuple[int, ...] = (512, 1024, 2048, 4096), seconds: float = 0.6, most_s: float = 0.5
) -> float:
    """GFLOP/s of square matmuls in ``dtype``, the best of ``sizes``: the machine's practical peak
    for that type, measured by PyTorch's own kernels in this run. Sizes go up while one product
    takes under ``most_s``: where a type is emulated (bf16 on a CPU without AVX-512 BF16, 2.3 s a
    1024-square product) the next size would take minutes, and the small ones already say so."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        start = time.perf_counter()
        a @ b
        once = time.perf_counter() - start
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or count < 2:
            a @ b
            count += 1
        best = max(best, 2 * n**3 * count / elapsed / 1e9)
        if once > most_s / 8:  # the next size is 8x the work: past the budget
            break
    return best


def _throughput(run: Runner, x: torch.Tensor, seconds: float) -> float:
    with torch.inference_mode():
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or count < 2:
            run(x)
            count += 1
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


def _autocast_bf16(module: Callable[[torch.Tensor], Any]) -> Runner:
    def run(x: torch.Tensor) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return module(x.contiguous(memory_format=torch.channels_last))

    return run


def _paths(
    model: ResNetBase,
    x: torch.Tensor,
    calibration: torch.Tensor,
    tmp: Path,
    with_compile: bool,
    missing: dict[str, str],
) -> list[tuple[str, str, Runner]]:
    """(name, kind, runner) for each path that builds; one that fails to build (or whose engine
    is not installed) is reported in ``missing`` and the rest are measured."""
    files: dict[str, Path] = {}

    def onnx_file(kind: str) -> Path:
        if not files:
            files["fp32"] = write_onnx(model, tmp / "model.onnx", x[:2])
            files["int8"] = quantize_onnx(files["fp32"], tmp / "model.int8.onnx", calibration)
        return files[kind]

    def eager_bf16() -> Runner:
        return _autocast_bf16(to_channels_last(copy.deepcopy(model)))

    def compiled_bf16() -> Runner:
        return _autocast_bf16(torch.compile(to_channels_last(fold_batchnorm(model))))

    ov = openvino_available()
    no_ov = "needs openvino (pip install 'resnetkit[fast]')"
    candidates: list[tuple[str, str, Callable[[], Runner], bool, str]] = [
        ("eager fp32 NCHW (baseline)", "baseline", lambda: model, True, ""),
        ("resnetkit fp32", "resnetkit", lambda: optimize_for_inference(model, "fp32"), True, ""),
        ("resnetkit bf16", "resnetkit", lambda: optimize_for_inference(model, "bf16"), True, ""),
        ("resnetkit int8", "resnetkit", lambda: optimize_for_inference(model, "int8", calibration), ov, no_ov),
        ("PyTorch eager bf16 autocast + channels_last", "peer", eager_bf16, True, ""),
        ("torch.compile bf16 + channels_last", "peer", compiled_bf16, with_compile, "skipped (--no-compile)"),
        ("ONNX Runtime fp32", "peer", lambda: OnnxClassifier(onnx_file("fp32")), True, ""),
        ("ONNX Runtime int8 (static QDQ, per-channel)", "peer", lambda: _OnnxRunner(onnx_file("int8")), True, ""),
        # A user's OpenVINO: the ONNX files compiled with the plugin's defaults (bf16 where native).
        ("OpenVINO on the fp32 ONNX file", "peer", lambda: _OpenVINODefaults(onnx_file("fp32")), ov, no_ov),
        ("OpenVINO int8 on the QDQ file", "peer", lambda: _OpenVINODefaults(onnx_file("int8")), ov, no_ov),
    ]
    built: list[tuple[str, str, Runner]] = []
    for name, kind, build, available, why in candidates:
        if not available:
            missing[name] = why
            continue
        try:
            built.append((name, kind, build()))
        except ImportError as e:
            missing[name] = f"not installed ({e.name})"
        except Exception as e:  # one path that cannot be built does not stop the others
            missing[name] = f"failed to build: {first_line(e)}"
    return built


class _OnnxRunner:
    """A plain ONNX Runtime session (the int8 file carries no resnetkit metadata)."""

    def __init__(self, path: Path):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> Any:
        return self.session.run(None, {INPUT: x.numpy()})


class _OpenVINODefaults:
    def __init__(self, path: Path):
        self.compiled = core().compile_model(str(path), "CPU")

    def __call__(self, x: torch.Tensor) -> Any:
        return self.compiled(x.numpy())


def bench_inference(
    model_name: str = "resnet50",
    batch_size: int = 32,
    image_size: int | None = None,
    seconds: float = 3.0,
    warmup: int = 2,
    latency_repeats: int = 20,
    with_compile: bool = True,
    rounds: int = 3,
    log: Callable[[str], None] = print,
) -> BenchResult:
    """Images/s of each path at ``batch_size`` (median of ``rounds`` interleaved rounds of
    ``seconds / rounds``) and batch-1 latency (p50, p99 over ``latency_repeats`` runs), for a
    freshly built ``model_name`` (weights do not change speed;
    int8 is calibrated on random inputs here, and its accuracy measured on real data elsewhere)."""
    model: ResNetBase = create_model(model_name).eval()
    side = image_size or input_size(model)[0]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, model.in_chans, side, side, generator=gen)
    calibration = torch.randn(32, model.in_chans, side, side, generator=gen)
    with torch.device("meta"):  # counted on the meta device: nothing computed
        macs = count_macs(create_model(model_name), side, model.in_chans)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    if not cpu_supports_bf16():
        log("note: this CPU has no native bf16; bf16 runs emulated")
    log(f"matmul peak in this run: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    result = BenchResult(model_name, batch_size, side, torch.get_num_threads(), macs / 1e9, peaks)
    result.auto_path = f"resnetkit {resolve_precision('auto', 'cpu', 'infer')}"
    with tempfile.TemporaryDirectory() as tmp:
        built = _paths(model, x, calibration, Path(tmp), with_compile, result.not_measured)
        with torch.inference_mode():
            for _, _, run in built:  # warm-up (and compilation) before any path is timed
                for _ in range(warmup):
                    run(x)
        # Interleaved rounds, median per path: a drift in the machine's speed (a neighbour's load,
        # clocks) falls on every path alike instead of on whichever ran at the time.
        rates: list[list[float]] = [[] for _ in built]
        for _ in range(rounds):
            for rate, (_, _, run) in zip(rates, built, strict=True):
                rate.append(_throughput(run, x, seconds / rounds))
        base = statistics.median(rates[0])
        for (name, kind, run), rate in zip(built, rates, strict=True):
            ips = statistics.median(rate)
            p50, p99 = _latency(run, x[:1], latency_repeats)
            gflops = 2 * macs * ips / 1e9
            bf16, int8 = gflops / peaks["bf16"], gflops / (2 * peaks["bf16"])
            result.paths.append(PathResult(name, kind, ips, ips / base, gflops, bf16, int8, p50, p99))
            log(
                f"{name:<46} {ips:8.1f} img/s {ips / base:6.2f}x {gflops:7.0f} GFLOP/s "
                f"({100 * bf16:3.0f}% of bf16 peak, {100 * int8:3.0f}% of int8)  "
                f"batch-1 p50 {p50:7.2f} ms p99 {p99:7.2f} ms"
            )
    return result
