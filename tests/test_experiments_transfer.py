"""The transfer study end to end on a tiny grid (digits from the shipped Fashion-MNIST ResNet-20),
and its verdicts on hand-made numbers."""

import csv

from resnetkit.experiments.transfer import SOURCE_TAG, TransferStudy, run_study, summarize
from resnetkit.experiments.transfer_report import findings, read_rows, write_results


def test_tiny_study_writes_one_row_per_run_and_a_report(tmp_path):
    study = TransferStudy(
        "tiny",
        "resnet20",
        SOURCE_TAG,
        "digits",
        labels=(2,),
        few_steps=2,
        augment={"pad": 1, "flip": False},
        methods=("scratch", "linear-probe", "knn"),
    )
    rows = run_study(study, 2, tmp_path)
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("scratch", 0),
        ("linear-probe", 0),
        ("knn", 0),
        ("scratch", 1),
        ("linear-probe", 1),
        ("knn", 1),
    ]
    assert all(r["train_images"] == 20 and 0 <= r["top1"] <= 1 for r in rows)
    assert (tmp_path / "tiny" / "linear-probe-k2-s1" / "train_subset.json").is_file()
    again = run_study(study, 2, tmp_path)  # finished runs are read back, not trained again
    assert [r["top1"] for r in again] == [r["top1"] for r in rows]
    paths = write_results(rows, tmp_path, "resnetkit experiment transfer")
    assert all(p.is_file() for p in paths.values())
    assert len(list(csv.DictReader(paths["results"].open()))) == 6
    assert read_rows(paths["results"])[0]["labels_per_class"] == 2
    report = paths["report"].read_text()
    assert "| 2 |" in report and "Findings" in report


def test_findings_call_a_gain_only_beyond_the_spread():
    def cell(k, method, mean, std):
        return {"study": "s", "labels_per_class": k, "method": method, "n": 5, "mean": mean, "std": std}

    summary = [
        cell(1, "scratch", 0.50, 0.02),
        cell(1, "finetune", 0.70, 0.03),  # +20 points, spread 5: helps
        cell(10, "scratch", 0.80, 0.05),
        cell(10, "finetune", 0.82, 0.05),  # +2, spread 10: no clear difference
        cell("all", "scratch", 0.95, 0.01),
        cell("all", "finetune", 0.90, 0.01),  # -5, spread 2: hurts
    ]
    lines = findings(summary)
    assert "helps" in lines[0] and "no clear difference" in lines[1] and "hurts" in lines[2]
    assert "+20.0 points" in lines[0]


def test_a_gain_on_every_paired_seed_counts_even_within_the_spread():
    rows = [
        {
            "study": "s",
            "labels_per_class": 10,
            "method": m,
            "seed": seed,
            "top1": base + (0.03 if m == "finetune" else 0),
        }
        for seed, base in enumerate([0.6, 0.8, 0.7])
        for m in ("scratch", "finetune")
    ]

    (line,) = findings(summarize(rows), rows)
    assert "helps" in line and "better on 3 of 3 seeds" in line
    (line,) = findings(summarize(rows))  # without the pairs, +3 points inside a spread of 20
    assert "no clear difference" in line
