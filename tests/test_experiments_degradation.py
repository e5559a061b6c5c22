"""The degradation experiment: twins trained with one recipe, reused and resumed, judged from the numbers."""

import csv
import json

import matplotlib.image
import pytest

from resnetkit.artifacts import load_checkpoint
from resnetkit.experiments import runs
from resnetkit.experiments.degradation import (
    TwinRun,
    experiment_config,
    judge,
    run_degradation,
    train_or_reuse,
    twin_names,
)
from resnetkit.train import TrainingInterrupted, fit

FAST = {"progress": False, "precision": "fp32", "channels_last": False, "data": {"pad": 1}}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("degradation")
    return out, run_degradation("digits", [32, 20], epochs=1, out=out, overrides=FAST)


def test_each_twin_is_trained_with_the_same_recipe_and_outputs_are_written(experiment):
    out, result = experiment
    assert [(r.model, r.depth, r.residual) for r in result.runs] == [
        ("plain20", 20, False),
        ("resnet20", 20, True),
        ("plain32", 32, False),
        ("resnet32", 32, True),
    ]
    configs = [load_checkpoint(r.run_dir)["config"] for r in result.runs]
    for c in configs:  # the paper's §4.2 hyperparameters, evaluated on the test set, same seed
        assert (c["optim"]["lr"], c["optim"]["weight_decay"], c["schedule"]["name"]) == (0.1, 1e-4, "step")
        assert (c["data"]["val_size"], c["seed"], c["epochs"], c["max_steps"]) == (0, 0, 1, None)
    assert all(r.train_curve and r.test_curve and 0 <= r.final_train_error <= 1 for r in result.runs)

    from resnetkit.experiments import write_degradation

    paths = write_degradation(result, out, "resnetkit experiment degradation --data digits")
    rows = list(csv.DictReader(paths["results"].open()))
    assert [r["model"] for r in rows] == ["plain20", "resnet20", "plain32", "resnet32"]
    assert float(rows[0]["final_train_error"]) == pytest.approx(result.runs[0].final_train_error, abs=1e-4)
    report = paths["report"].read_text()
    assert "`resnetkit experiment degradation --data digits`" in report and "Verdict:" in report
    assert "![training and test error](curves.png)" in report
    assert matplotlib.image.imread(paths["curves"]).shape[1] > 500
    assert json.loads(paths["json"].read_text())["runs"][3]["model"] == "resnet32"


def test_rerun_reuses_finished_runs_and_refuses_other_settings(experiment, monkeypatch):
    out, first = experiment

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs, "fit", no_training)  # every study trains through experiments.runs
    monkeypatch.chdir(out.parent)  # the same folder, named relatively this time
    again = run_degradation("digits", [20, 32], epochs=1, out=out.name, overrides=FAST)
    assert [r.final_test_error for r in again.runs] == [r.final_test_error for r in first.runs]
    with pytest.raises(ValueError, match=r"other settings.*epochs: 1 there, 2 now"):
        run_degradation("digits", [20, 32], epochs=2, out=out, overrides=FAST)


def test_an_interrupted_run_is_resumed_not_restarted(tmp_path):
    cfg = experiment_config("plain20", "digits", 2, 0, tmp_path, overrides=FAST)

    def stop(step, _):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        fit(cfg, callbacks=[stop])
    run_dir = train_or_reuse(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 * (1437 // 128)
    steps = [int(float(r["step"])) for r in csv.DictReader((run_dir / "steps.csv").open())]
    assert steps == sorted(set(steps)) and steps[-1] == summary["steps"]


def _twin(model, depth, residual, train):
    return TwinRun(model, depth, residual, "", [], [], train, train + 0.01, train, 1.0)


@pytest.mark.parametrize(
    "errors,degraded,resolved",
    [
        ((0.05, 0.03, 0.08, 0.02), True, True),  # plain20, resnet20, plain56, resnet56 training errors
        ((0.05, 0.03, 0.08, 0.04), True, False),  # the deeper ResNet trains worse
        ((0.05, 0.03, 0.04, 0.02), False, True),  # the deeper plain net trains better: nothing to remove
    ],
)
def test_judge_reads_the_training_errors(errors, degraded, resolved):
    runs = [
        _twin(n, d, r, e)
        for (n, d, r), e in zip(
            [("plain20", 20, False), ("resnet20", 20, True), ("plain56", 56, False), ("resnet56", 56, True)],
            errors,
            strict=True,
        )
    ]
    got_degraded, got_resolved, findings = judge(runs)
    assert (got_degraded, got_resolved) == (degraded, resolved)
    assert f"plain56 ends with {100 * errors[2]:.2f}% training error" in findings[0]
    assert findings[-1].startswith("Verdict:")


def test_one_depth_has_nothing_to_compare_and_unknown_depths_are_named():
    assert judge([_twin("plain20", 20, False, 0.1), _twin("resnet20", 20, True, 0.1)])[:2] == (None, None)
    with pytest.raises(ValueError, match="no model plain21, resnet21"):
        twin_names([20, 21])
