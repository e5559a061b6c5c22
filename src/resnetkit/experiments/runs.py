"""One policy for every study's runs: train a run into its folder, reuse it when it finished,
resume it when it was interrupted with the same settings, and otherwise refuse (or, when the user
says ``--restart``, start it over), so a study stopped halfway loses no work and never mixes
runs made with other settings."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import yaml

from ..train.config import TrainConfig
from ..train.engine import fit

log = logging.getLogger("resnetkit.experiments")

# Where the runs live and whether a bar is drawn change nothing that was trained.
_NOT_SETTINGS = ("progress", "out")


def train_or_reuse(cfg: TrainConfig, restart: bool = False) -> Path:
    """Train ``cfg`` into ``out/run_name``. A finished run there is reused and an interrupted one
    resumed; a run made with other settings is an error naming what differs, or with
    ``restart`` is removed and trained anew."""
    assert cfg.run_name is not None, "a study names every run"
    run_dir = Path(cfg.out) / cfg.run_name
    saved = run_dir / "config.yaml"
    if saved.is_file():
        values = yaml.safe_load(saved.read_text())
        values.setdefault("test_curve", True)  # runs from before the key evaluated the test set every epoch
        before = TrainConfig.from_dict(values)
        if dataclasses.replace(before, progress=cfg.progress, out=cfg.out) != cfg:
            diff = _config_diff(before.to_dict(), cfg.to_dict())
            if not restart:
                raise ValueError(
                    f"{run_dir} holds a run made with other settings ({diff}); use another --out, remove it, "
                    "or pass --restart to train it anew"
                )
            log.info("%s: made with other settings (%s): starting over (--restart)", run_dir, diff)
            shutil.rmtree(run_dir)
    if (run_dir / "summary.json").is_file():
        log.info("%s: finished run found, reusing it", run_dir)
    elif (run_dir / "last.pt").is_file():
        log.info("%s: resuming the interrupted run", run_dir)
        fit(None, resume=run_dir)
    else:
        fit(cfg)
    return run_dir


def _config_diff(a: dict, b: dict, prefix: str = "") -> str:
    diffs = []
    for k in sorted(set(a) | set(b)):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            diffs.append(_config_diff(a[k], b[k], f"{prefix}{k}."))
        elif a.get(k) != b.get(k) and k not in _NOT_SETTINGS:
            diffs.append(f"{prefix}{k}: {a.get(k)!r} there, {b.get(k)!r} now")
    return "; ".join(d for d in diffs if d)
