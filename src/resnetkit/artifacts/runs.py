"""A run's folder: what made it (config, command), what it measured (metrics.csv, TensorBoard
events, plots) and what it kept (checkpoints).

One rule for which checkpoint a run folder means: ``best.pt`` exists only when the run had a
validation split that is not the test set, and was chosen on it; every consumer takes ``best.pt``
if present, else ``last.pt`` (the final weights), and says which it took."""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ..models import WeightsError
from .atomic import atomic_write, atomic_write_text

log = logging.getLogger(__name__)


BEST, LAST = "best.pt", "last.pt"


def run_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint a run folder stands for: ``best.pt`` (chosen on a validation split) if
    the run kept one, else ``last.pt``. Logs which, so every command says what it loaded."""
    run_dir = Path(run_dir)
    best, last = run_dir / BEST, run_dir / LAST
    if best.is_file():
        log.info("%s: using %s (the epoch chosen on the validation split)", run_dir, BEST)
        return best
    if last.is_file():
        log.info("%s: using %s (the final weights; the run kept no validation-chosen best.pt)", run_dir, LAST)
        return last
    raise WeightsError(f"{run_dir}: a folder without {BEST} or {LAST}")


def default_run_name(model: str, data: str) -> str:
    return f"{model}-{Path(data).name}-{time.strftime('%Y%m%d-%H%M%S')}"


def new_run_dir(out: str, run_name: str | None, model: str, data: str) -> Path:
    """``out/run_name``, or ``out/MODEL-DATA-TIME`` (suffixed if taken). A named folder may be
    reused only if it holds no run yet: its checkpoints and results are never overwritten."""
    name = run_name or default_run_name(model, data)
    path = Path(out) / name
    suffix = 1
    while path.exists() and run_name is None:
        suffix += 1
        path = Path(out) / f"{name}-{suffix}"
    if any((path / f).exists() for f in ("last.pt", "summary.json")):
        raise ValueError(f"{path} already holds a run; continue it with --resume {path}, or choose another --name")
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunLog:
    """Writes on the main process only; other ranks hold a RunLog that does nothing."""

    def __init__(self, path: Path, enabled: bool = True, tensorboard: bool = True, purge_step: int | None = None):
        """``purge_step`` (on resume: the checkpoint's step + 1) makes TensorBoard drop what an
        interrupted session logged at or after that step, so the curves are the uninterrupted run's."""
        self.path, self.enabled = path, enabled
        self.rows: list[dict] = []  # metrics.csv: one per epoch
        self.step_rows: list[dict] = []  # steps.csv: one per log_every steps
        self._tb: Any = None  # a SummaryWriter, made on first use (tensorboard is optional)
        self._tensorboard = enabled and tensorboard
        self._purge_step = purge_step

    def _writer(self) -> Any:
        if self._tb is None and self._tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.path / "tensorboard"), purge_step=self._purge_step)
            except ImportError:
                log.info("tensorboard is not installed: no event files (pip install tensorboard)")
                self._tensorboard = False
        return self._tb

    def start(self, config: dict, argv: list[str] | None = None) -> None:
        """A fresh run: logs that an earlier attempt left (one that died before its first
        checkpoint) are removed, and the config and command written."""
        if not self.enabled:
            return
        for name in ("metrics.csv", "steps.csv"):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / "tensorboard", ignore_errors=True)
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        argv = sys.argv if argv is None else argv
        atomic_write_text(self.path / "command.txt", shlex.join(argv) + "\n")

    def load_rows(self, step: int) -> None:
        """On resume from ``step``: keep the rows written up to it, drop any written after it."""
        self.rows = _rows_up_to(read_csv(self.path / "metrics.csv"), step)
        self.step_rows = _rows_up_to(read_csv(self.path / "steps.csv"), step)
        if self.enabled and self.step_rows:
            _write_csv(self.path / "steps.csv", self.step_rows)
        elif self.enabled:
            (self.path / "steps.csv").unlink(missing_ok=True)

    def log_epoch(self, row: dict) -> None:
        """One row per epoch in metrics.csv (rewritten whole: a row may replace one from before a resume)."""
        if not self.enabled:
            return
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        _write_csv(self.path / "metrics.csv", self.rows)
        self._scalars({k: v for k, v in row.items() if k not in ("epoch", "step")}, row["step"])

    def log_step(self, row: dict) -> None:
        """One row every ``log_every`` steps in steps.csv (appended) and TensorBoard (``step/...``)."""
        if not self.enabled:
            return
        path = self.path / "steps.csv"
        new = not path.is_file()
        self.step_rows.append(row)
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        self._scalars({f"step_{k}": v for k, v in row.items() if k not in ("epoch", "step")}, row["step"])

    def _scalars(self, values: dict, step: float) -> None:
        """TensorBoard tags from the first underscore: eval_top1 -> eval/top1."""
        writer = self._writer()
        if writer is None:
            return
        for k, v in values.items():
            if v is not None:
                writer.add_scalar(k.replace("_", "/", 1), v, int(step))
        writer.flush()

    def write_json(self, name: str, data: dict) -> None:
        if self.enabled:
            atomic_write_text(self.path / name, json.dumps(data, indent=2) + "\n")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a run's CSV as numbers (int where the text is one), empty cells as None. A row a
    kill cut short (missing cells, or text that is no number) ends the reading: it is the last."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            try:
                rows.append({k: _number(v) for k, v in raw.items() if k is not None})
            except (TypeError, ValueError):
                break
            if None in raw.values() or None in raw:
                rows.pop()
                break
    return rows


def _rows_up_to(rows: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """The rows logged up to ``step``, in order; a half-written last row (its step cut to a prefix
    of the real one, so out of order) is not among them."""
    kept: list[dict[str, Any]] = []
    for row in rows:
        if not isinstance(row.get("step"), int) or row["step"] > step or (kept and row["step"] <= kept[-1]["step"]):
            break
        kept.append(row)
    return kept


def _number(text: str) -> int | float | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Rewrite a whole CSV atomically: a crash leaves the old file, never half of the new one."""
    keys = list(dict.fromkeys(k for r in rows for k in r))

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, keys)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)
