"""``resnetkit bench`` reports every path it measured as a ratio to its own baseline (no timing is asserted)."""

import json

from resnetkit.cli import main
from resnetkit.infer.bench import bench_inference
from resnetkit.train.bench import bench_training


def test_bench_measures_resnetkit_and_the_peers_against_the_baseline_of_the_same_run():
    lines = []
    result = bench_inference(
        "resnet20", batch_size=8, seconds=0.2, latency_repeats=3, with_compile=False, rounds=2, log=lines.append
    )
    names = [p.name for p in result.paths]
    assert names[0].startswith("eager fp32") and result.paths[0].speedup == 1.0
    assert {"resnetkit fp32", "resnetkit bf16", "resnetkit int8"} <= set(names)
    peers = {p.name for p in result.paths if p.kind == "peer"}
    ort_int8 = "ONNX Runtime int8 (static QDQ, per-channel)"
    assert {"ONNX Runtime fp32", ort_int8, "OpenVINO int8 on the QDQ file"} <= peers
    measured = [line for line in lines if not line.startswith("note:")]  # a CPU without native bf16 says so
    assert len(names) == 9 and len(measured) == len(names) + 1  # the matmul peaks, then a line a path
    assert all(p.images_per_second > 0 and p.latency_ms_p99 >= p.latency_ms_p50 > 0 for p in result.paths)
    assert all(abs(p.of_int8_limit * 2 - p.of_bf16_peak) < 1e-9 for p in result.paths)
    report = result.as_dict()
    assert {"baseline_ips", "best_ips", "best_path", "speedup", "peers", "vs_fastest_peer"} <= set(report)
    assert report["best_path"].startswith("resnetkit")
    assert report["best_ips"] == max(p.images_per_second for p in result.paths if p.kind == "resnetkit")
    assert report["peers"]["torch.compile bf16 + channels_last"] == {"not_measured": "skipped (--no-compile)"}
    assert report["peers"]["OpenVINO int8 on the QDQ file"]["images_per_second"] > 0


def test_the_command_prints_json(capsys):
    args = ["bench", "--model", "resnet20", "--batch-size", "4", "--seconds", "0.1", "--no-compile", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "resnet20" and report["image_size"] == 32 and report["batch_size"] == 4


def test_training_bench_measures_the_engines_configurations():
    rates = bench_training("resnet20", batch_size=8, image_size=16, steps=1, log=lambda _: None)
    assert rates[0].name.startswith("eager fp32") and rates[0].speedup == 1.0
    assert len(rates) == 4 and all(r.images_per_second > 0 for r in rates)


def test_training_bench_reports_peak_memory_and_the_checkpointed_path():
    rates = bench_training("resnet20", batch_size=4, image_size=16, steps=1, log=print, with_checkpointing=True)
    assert rates[-1].name.endswith("activation checkpointing") and len(rates) == 5
    assert all(r.peak_memory > 100 * 2**20 for r in rates)  # the process's peak: PyTorch itself is more


def test_training_bench_command(capsys):
    args = [
        "bench",
        "--task",
        "train",
        "--batch-size",
        "8",
        "--image-size",
        "16",
        "--steps",
        "1",
        "--no-compile",
        "--grad-checkpointing",
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "train" and report["model"] == "resnet20" and len(report["configs"]) == 5
    assert all(c["peak_memory"] > 0 for c in report["configs"])
