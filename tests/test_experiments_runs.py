"""One "train or reuse" policy for every study (``experiments.runs.train_or_reuse``): a finished run
is reused, never trained again; a run made with other settings is refused with what differs, or
trained anew with ``restart``."""

from __future__ import annotations

import pytest
import yaml

from resnetkit.experiments import runs
from resnetkit.experiments.degradation import experiment_config

FAST = {"data": {"batch_size": 128, "eval_batch_size": 512}, "max_steps": 2, "progress": False}


def test_finished_runs_are_reused_and_other_settings_refused_or_restarted(tmp_path, monkeypatch):
    cfg = experiment_config("resnet20", "digits", 1, 0, tmp_path, overrides=FAST)
    run_dir = runs.train_or_reuse(cfg)
    assert (run_dir / "summary.json").is_file()

    trained = []
    real_fit = runs.fit
    monkeypatch.setattr(runs, "fit", lambda *a, **k: trained.append(a) or real_fit(*a, **k))
    assert runs.train_or_reuse(cfg) == run_dir and trained == []  # reused as it is

    other = experiment_config("resnet20", "digits", 2, 0, tmp_path, overrides=FAST)
    with pytest.raises(ValueError, match=r"other settings \(epochs: 1 there, 2 now\).*--restart"):
        runs.train_or_reuse(other)
    assert trained == []
    assert runs.train_or_reuse(other, restart=True) == run_dir and len(trained) == 1
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["epochs"] == 2
