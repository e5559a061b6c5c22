"""``resnetkit bench`` reports every path it measured as a ratio to its own baseline (no timing is asserted)."""

import json

from resnetkit.cli import main
from resnetkit.infer.bench import bench_inference


def test_bench_measures_each_path_against_the_baseline_of_the_same_run():
    lines = []
    result = bench_inference("resnet20", batch_size=8, seconds=0.2, latency_repeats=3, log=lines.append)
    names = [p.name for p in result.paths]
    assert names[0].startswith("eager fp32") and result.paths[0].speedup == 1.0
    assert "ONNX Runtime fp32" in names and len(lines) == len(names) == 4
    assert all(p.images_per_second > 0 and p.latency_ms_p99 >= p.latency_ms_p50 > 0 for p in result.paths)
    report = result.as_dict()
    assert {"baseline_ips", "best_ips", "best_path", "speedup", "peers"} <= set(report)
    assert report["best_ips"] == max(p.images_per_second for p in result.paths)
    assert report["peers"]["OpenVINO int8"]  # says what it could not measure


def test_the_command_prints_json(capsys):
    assert main(["bench", "--model", "resnet20", "--batch-size", "4", "--seconds", "0.1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "resnet20" and report["image_size"] == 32 and report["batch_size"] == 4
