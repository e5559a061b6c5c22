"""The sequences study on one small bundled dataset (ItalyPowerDemand: 67 training series of 24
steps), its ResNet runs replaced by recorded measurements; resumability; verdicts from hand-made
rows; the text baseline on a tiny corpus; the command's bad input."""

import csv

import pytest

pytest.importorskip("aeon")

from resnetkit.cli import main
from resnetkit.experiments import sequence_baselines, sequences
from resnetkit.experiments.sequences import Cell, SequenceBudget, run_study
from resnetkit.experiments.sequences_report import read_rows, verdicts, write_results
from resnetkit.train.recipes import RECIPES

QUICK = SequenceBudget(quick=True)
# Recorded: what a ResNet run's row holds (the engine is another module's test).
RECORDED = {"resnet_tsc": 0.955, "plain_tsc": 0.931}


def recorded_resnet(calls):
    def run(cell, out, budget, restart=False):
        calls.append(cell)
        return {
            "accuracy": RECORDED[cell.method],
            "seconds": 12.0,
            "train_items": 67,
            "test_items": 1029,
            "classes": 2,
            "run": str(out / "runs" / cell.dataset / f"{cell.method}-s{cell.seed}"),
        }

    return run


def test_study_on_one_dataset_writes_rows_a_report_and_is_resumed_without_rerunning(tmp_path, monkeypatch):
    calls: list[Cell] = []
    saved = []
    rows = run_study(
        ["ItalyPowerDemand"], 1, tmp_path, QUICK, on_row=lambda r: saved.append(len(r)), resnet=recorded_resnet(calls)
    )
    assert [r["method"] for r in rows] == ["resnet_tsc", "plain_tsc", "minirocket", "minirocket-raw"]
    assert saved == [1, 2, 3, 4]  # every new row is handed over as it comes
    assert [c.method for c in calls] == ["resnet_tsc", "plain_tsc"]  # baselines first, then the ResNets
    mini = next(r for r in rows if r["method"] == "minirocket")
    assert mini["train_items"] == 67 and mini["test_items"] == 1029 and mini["classes"] == 2
    assert 0.8 < mini["accuracy"] <= 1.0 and mini["seconds"] > 0
    assert mini["settings"] == sequence_baselines.settings_of("minirocket", quick=True)

    paths = write_results(rows, tmp_path, "resnetkit experiment sequences --quick")
    assert all(p.is_file() for p in paths.values())
    again = read_rows(paths["results"])
    assert [(r["method"], r["accuracy"]) for r in again] == [(r["method"], r["accuracy"]) for r in rows]
    report = paths["report"].read_text()
    assert "| ItalyPowerDemand | 96.3 ± 0.4 (10) | 95.5 ± 0.0 (1), 12.0 s | 93.1" in report
    assert "within 1 point of the published mean on 1 of 1 datasets" in report  # 95.5 vs 96.3
    assert "- ItalyPowerDemand: recipe=time-series;epochs=2\n" in report  # what the ResNet rows were made with

    # A second run reuses every row: nothing is trained or fitted again.
    def refuse(*args, **kwargs):
        raise AssertionError("a finished row was run again")

    monkeypatch.setattr(sequence_baselines, "minirocket", refuse)
    resumed = run_study(["ItalyPowerDemand"], 1, tmp_path, QUICK, previous=again, resnet=refuse)
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in again]

    # A row made with other settings is refused, or with restart run anew.
    with pytest.raises(ValueError, match="minirocket seed 0 was made with n_kernels=504"):
        run_study(["ItalyPowerDemand"], 1, tmp_path, SequenceBudget(epochs=2), ["minirocket"], previous=again)
    monkeypatch.setattr(
        sequence_baselines, "minirocket", lambda *a, **k: sequence_baselines.BaselineResult(0.5, 1, 67, 1029, 2)
    )
    redone = run_study(
        ["ItalyPowerDemand"], 1, tmp_path, SequenceBudget(), ["minirocket"], previous=again, restart=True
    )
    assert [r["accuracy"] for r in redone if r["method"] == "minirocket"] == [0.5]
    assert len(redone) == 4  # the other rows are kept


def row(dataset, method, seed, accuracy, seconds=1.0):
    return {"dataset": dataset, "method": method, "seed": seed, "accuracy": accuracy, "seconds": seconds}


def test_verdicts_are_computed_from_the_rows():
    rows = []
    for seed, jitter in enumerate((-0.002, 0.0, 0.002)):
        rows += [
            row("GunPoint", "resnet_tsc", seed, 0.990 + jitter, 60),  # published 99.1: within 1 point
            row("GunPoint", "minirocket", seed, 1.0, 2),
            row("OSULeaf", "resnet_tsc", seed, 0.900 + jitter, 60),  # published 97.9: 7.9 below
            row("OSULeaf", "minirocket", seed, 0.950 + jitter, 2),  # beats the ResNet by 5 points
            row("OSULeaf", "plain_tsc", seed, 0.700 + jitter, 60),
            row("JapaneseVowels", "minirocket", seed, 0.82),
            row("JapaneseVowels", "minirocket-raw", seed, 0.99),
            row("fortunes", "tfidf-logreg", seed, 0.56 + jitter, 100),
        ]
    lines = verdicts(rows)
    assert lines[0].startswith("The time-series ResNet is within 1 point of the published mean on 1 of 2 datasets")
    assert "OSULeaf -7.9" in lines[0]
    assert any(line.startswith("OSULeaf: MiniRocket beats the ResNet (95.0% vs 90.0%, +5.0 points") for line in lines)
    assert any(line.startswith("GunPoint: MiniRocket beats the ResNet") for line in lines)
    assert "OSULeaf: the ResNet is ahead of its plain twin (+20.0 points)." in lines
    assert any("MiniRocket matches or beats the published ResNet mean on 1 of 3 datasets" in line for line in lines)
    assert any(
        line.startswith("JapaneseVowels: per-series z-normalisation changes MiniRocket's accuracy by -17.0")
        and line.endswith("the ResNets see it with data.normalize=dataset).")
        for line in lines
    )
    assert any(line.startswith("fortunes: TF-IDF + LR 56.0 ± 0.2% over 3 seeds") for line in lines)

    level = [row("GunPoint", m, s, a) for s, a in enumerate((0.95, 0.99)) for m in ("resnet_tsc", "minirocket")]
    assert any("MiniRocket is level with the ResNet" in line for line in verdicts(level))
    pending = verdicts([row("GunPoint", "minirocket", 0, 0.99)])
    assert pending[0] == "The time-series ResNet has no rows yet: its comparison with the published means is pending."


def test_tfidf_baseline_on_a_tiny_corpus(tmp_path):
    words = {"fruit": "apple banana cherry plum pear", "space": "rocket orbit comet star moon"}
    for label, text in words.items():
        (tmp_path / label).mkdir()
        for i in range(10):
            (tmp_path / label / f"{i}.txt").write_text(" ".join(text.split()[i % 5 :] + text.split()[: i % 5]))
    result = sequence_baselines.tfidf_logreg(str(tmp_path), seed=0, quick=True)
    assert (result.train_items, result.test_items, result.classes) == (16, 4, 2)
    assert result.accuracy == 1.0 and result.seconds > 0


@pytest.mark.skipif("time-series" not in RECIPES, reason="the time-series recipe lands with the sequence task")
def test_resnet_config_is_the_recipe_on_the_cell(tmp_path):
    cfg = sequences.resnet_config(Cell("JapaneseVowels", "plain_tsc", 3), tmp_path, SequenceBudget(epochs=7))
    assert (cfg.model.name, cfg.data.name, cfg.epochs, cfg.seed) == ("plain_tsc", "ucr:JapaneseVowels", 7, 3)
    assert cfg.recipe == "time-series" and cfg.out == str(tmp_path / "runs" / "JapaneseVowels")
    assert cfg.run_name == "plain_tsc-s3"
    # The multivariate datasets are standardised with their training split's statistics (their
    # levels carry the class); the univariate ones per series, and their settings stay as before.
    budget = SequenceBudget(epochs=300)
    assert cfg.data.normalize == "dataset"
    assert sequences.settings_of(Cell("JapaneseVowels", "resnet_tsc", 0), budget).endswith(";normalize=dataset")
    gun = sequences.resnet_config(Cell("GunPoint", "resnet_tsc", 0), tmp_path, budget)
    assert gun.data.normalize == "series"
    assert sequences.settings_of(Cell("GunPoint", "resnet_tsc", 0), budget) == "recipe=time-series;epochs=300"


@pytest.mark.skipif("time-series" not in RECIPES, reason="the time-series recipe lands with the sequence task")
def test_texts_get_their_own_epochs_unless_told(tmp_path):
    # The recipe's 300 epochs are hours a run on the fortunes corpus: the texts default to
    # TEXT_EPOCHS, the series to the recipe's, and --epochs sets both.
    default = SequenceBudget()
    text, series = Cell("fortunes", "resnet_text", 0), Cell("GunPoint", "resnet_tsc", 0)
    assert sequences.resnet_config(text, tmp_path, default).epochs == sequences.TEXT_EPOCHS < 300
    assert sequences.resnet_config(series, tmp_path, default).epochs == RECIPES["time-series"]["epochs"]
    assert sequences.settings_of(text, default) == f"recipe=time-series;epochs={sequences.TEXT_EPOCHS}"
    assert sequences.resnet_config(text, tmp_path, SequenceBudget(epochs=4)).epochs == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--datasets", "GunPoint,Nope"], "--datasets: unknown Nope; the study's datasets: GunPoint"),
        (["--methods", "lstm"], "--methods: unknown lstm"),
        (["--seeds", "0"], "--seeds 0: at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["experiment", "sequences", "-o", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "results.csv").exists()


def test_a_results_file_of_something_else_is_one_line(tmp_path, capsys):
    with (tmp_path / "results.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["study", "top1"], ["x", "0.5"]])
    assert main(["experiment", "sequences", "-o", str(tmp_path), "--datasets", "GunPoint"]) == 2
    assert "not a results file of this study" in capsys.readouterr().err


def test_a_study_stopped_by_sigterm_says_how_to_go_on_in_one_line(monkeypatch, capsys, tmp_path):
    import signal
    from pathlib import Path

    from resnetkit.train import TrainingInterrupted

    def stopped(*args, **kwargs):
        raise TrainingInterrupted(Path("runs/x"), 7, signal.SIGTERM)

    monkeypatch.setattr(sequences, "run_study", stopped)
    code = main(["experiment", "sequences", "--datasets", "GunPoint", "--quick", "-o", str(tmp_path)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 128 + signal.SIGTERM
    assert line.startswith("resnetkit experiment: stopped by SIGTERM at step 7") and "same command again" in line
