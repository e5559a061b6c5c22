"""The dense studies on a tiny budget: every cell is a real run, the rows come from the run
folders, a finished run is reused, and the report's verdicts follow from the rows."""

import csv
import json

import yaml

from resnetkit.experiments.dense import STUDIES, DenseBudget, run_studies
from resnetkit.experiments.dense_report import verdicts, write_results

TINY = DenseBudget(
    train_scenes=16, test_scenes=8, epochs=1, batch_size=8, head_channels=8, fpn_channels=8, pretrain_steps=2
)


def test_pretrained_vs_scratch_study_end_to_end(tmp_path):
    rows = run_studies(["pretrained-vs-scratch"], 2, tmp_path, TINY)
    arms = [(r["task"][:3], r["arm"], r["seed"]) for r in rows]
    assert arms[:4] == [
        ("seg", "scratch", 0),
        ("seg", "pretrained", 0),
        ("det", "scratch", 0),
        ("det", "pretrained", 0),
    ]
    assert len(rows) == 8 and all(r["steps"] == 2 for r in rows)
    assert all(0 <= r["miou"] <= 1 and r["map"] is None for r in rows if r["task"] == "segmentation")
    assert all(0 <= r["map"] <= 1 and r["miou"] is None for r in rows if r["task"] == "detection")
    pretrain = json.loads((tmp_path / "pretrain" / "resnet18-fashion-mnist" / "summary.json").read_text())
    assert pretrain["model"] == "resnet18" and pretrain["steps"] == 2  # trained once, for both seeds
    config = yaml.safe_load((tmp_path / "detection" / "fcos_resnet18_fpn-pretrained-s1" / "config.yaml").read_text())
    assert config["model"]["overrides"]["weights_backbone"].endswith("pretrain/resnet18-fashion-mnist/last.pt")
    seg = yaml.safe_load((tmp_path / "segmentation" / "deeplabv3_resnet20-pretrained-s0" / "config.yaml").read_text())
    assert (
        seg["model"]["overrides"]["weights_backbone"] == "resnet20.fashion_mnist"
        and seg["recipe"] == "scenes-segmentation"
    )
    again = run_studies(["pretrained-vs-scratch"], 1, tmp_path, TINY)  # read back, not trained again
    assert again == rows[:4]
    paths = write_results(rows, tmp_path, TINY, "resnetkit experiment dense (test)")
    with open(paths["results"], newline="") as f:
        assert len(list(csv.DictReader(f))) == 8
    report = paths["report"].read_text()
    assert "| pretrained-vs-scratch | segmentation | pretrained | deeplabv3_resnet20 | miou | 2 |" in report
    assert "| pretrained-vs-scratch | detection | pretrained | fcos_resnet18_fpn | map | 2 |" in report
    assert paths["predictions"].stat().st_size > 1000


def test_verdicts_need_every_seed():
    def row(arm, seed, miou):
        return {"study": "pretrained-vs-scratch", "task": "segmentation", "arm": arm, "seed": seed, "miou": miou}

    ahead = [row("scratch", 0, 0.2), row("pretrained", 0, 0.3), row("scratch", 1, 0.25), row("pretrained", 1, 0.35)]
    (line,) = verdicts(ahead)
    assert "pretrained (deeplabv3_resnet20) is ahead on every seed" in line and "10.0 points" in line
    mixed = [*ahead[:2], row("scratch", 1, 0.4), row("pretrained", 1, 0.35)]
    assert "no clear winner" in verdicts(mixed)[0]
    assert {c.task for cells in STUDIES.values() for c in cells} == {"segmentation", "detection"}
