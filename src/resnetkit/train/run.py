"""A run's folder: what made it (config, command), what it measured (metrics.csv, TensorBoard
events, plots) and what it kept (checkpoints)."""
from __future__ import annotations

import csv
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


def new_run_dir(out: str, run_name: str | None, model: str, data: str) -> Path:
    name = run_name or f"{model}-{Path(data).name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(out) / name
    suffix = 1
    while path.exists() and run_name is None:
        suffix += 1
        path = Path(out) / f"{name}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunLog:
    """Writes on the main process only; other ranks hold a RunLog that does nothing."""

    def __init__(self, path: Path, enabled: bool = True, tensorboard: bool = True):
        self.path, self.enabled = path, enabled
        self.rows: list[dict] = []
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(path / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed: no event files (pip install tensorboard)")

    def write_config(self, config: dict, argv: list[str] | None = None) -> None:
        if not self.enabled:
            return
        (self.path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        argv = sys.argv if argv is None else argv
        (self.path / "command.txt").write_text(shlex.join(argv) + "\n")

    def load_rows(self) -> None:
        """On resume: keep the rows already written."""
        f = self.path / "metrics.csv"
        if f.is_file():
            with f.open() as fh:
                self.rows = [{k: float(v) if v not in ("",) else None for k, v in r.items()} for r in csv.DictReader(fh)]

    def log_epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        with (self.path / "metrics.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, keys)
            writer.writeheader()
            writer.writerows(self.rows)
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("epoch", "step") and v is not None:
                    self._tb.add_scalar(k.replace("_", "/", 1), v, int(row["step"]))
            self._tb.flush()

    def write_json(self, name: str, data: dict) -> None:
        if self.enabled:
            (self.path / name).write_text(json.dumps(data, indent=2) + "\n")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
