"""Hooks: what wraps the optimizer step (detectron2's ``HookBase``). Evaluation, checkpoints, the
logs, the console, the weight EMA and the NaN guard are hooks on every run; ``fit(cfg, hooks=[...])``
adds more, called after them.

The trainer calls each point on every hook, in the order ``Trainer`` documents with its loop:

- ``before_train``: once, before the first epoch (of this session: a resumed run calls it again).
- ``before_epoch``: ``trainer.state.epoch`` is the epoch about to train; ``batch_in_epoch`` the
  batches of it a resumed run skips.
- ``before_step`` / ``after_step``: around each optimizer step. Before it ``trainer.batch`` is
  the step's ``(inputs, targets)`` on the device (the memory guard probes it). After it ``trainer.state.step``
  counts it, ``trainer.loss`` is its loss, and ``trainer.step_metrics`` holds the logging window's
  training statistics when the step ends one (every ``log_every`` steps, an epoch's last, the run's),
  else None.
- ``after_epoch``: ``trainer.epoch_metrics`` holds the epoch's training statistics. ``EvalHook``
  sets ``trainer.evaluation`` and ``trainer.improved``; ``MetricsWriter`` writes the epoch's row and
  closes the epoch (``trainer.state.epoch`` moves on), so an interruption before that repeats the
  evaluation on resume, and one after it does not.
- ``after_train``: once, after the last epoch; not when the run is interrupted or fails.
  ``EvalHook`` sets ``trainer.test`` and ``trainer.test_weights``.

Every rank calls every hook: a hook that reads statistics or evaluates takes part in collectives."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..artifacts import checkpoint_weights, load_checkpoint

log = logging.getLogger("resnetkit.train")

# Called after every optimizer step with the step number and {"loss", "epoch", "model"}.
StepCallback = Callable[[int, dict], None]

PROGRESS_SECONDS = 30.0  # without a terminal: a progress line this often


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class HookBase:
    """Override any of the call points; ``trainer`` is set when the trainer takes the hook."""

    trainer: Any  # the engine's Trainer; not imported, as the engine imports this module

    def before_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def after_train(self) -> None:
        pass


class Lookahead(HookBase):
    """Lookahead (Zhang et al. 2019, arXiv:1907.08610, Alg. 1) around the optimizer: every
    ``optim.lookahead_steps`` k steps, and at the run's last, the slow weights move
    ``optim.lookahead_alpha`` of the way to the fast ones and the fast ones start again from there.
    The slow weights live in the optimizer's per-parameter state (``lookahead_slow``), so a
    checkpoint keeps them and a resumed run goes on exactly; until the first step writes them (Adam
    fills its state only then), the weights the run started from are held here."""

    KEY = "lookahead_slow"

    def __init__(self) -> None:
        self._start: list[torch.Tensor] | None = None

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.trainer.optimizer.param_groups for p in group["params"]]

    def before_train(self) -> None:
        state = self.trainer.optimizer.state
        if any(self.KEY not in state[p] for p in self._params()):
            self._start = [p.detach().clone() for p in self._params()]

    @torch.no_grad()
    def after_step(self) -> None:
        t = self.trainer
        state, params = t.optimizer.state, self._params()
        if self._start is not None:
            for p, start in zip(params, self._start, strict=True):
                state[p].setdefault(self.KEY, start)
            self._start = None
        k = t.cfg.optim.lookahead_steps
        if t.state.step % k and t.state.step != t.total_steps:
            return
        for p in params:
            slow = state[p][self.KEY]
            slow.lerp_(p, t.cfg.optim.lookahead_alpha)
            p.copy_(slow)


class EMAUpdate(HookBase):
    """The weight EMA follows every optimizer step."""

    def after_step(self) -> None:
        t = self.trainer
        if t.ema is not None:
            t.ema.update_parameters(t.model)


class NaNGuard(HookBase):
    """Stop when the training loss is NaN or infinite, before it is logged or checkpointed, and say
    why: non-finite inputs or targets in the batch, or masks with no pixel to learn from (the
    data), or, with neither, a divergence (the learning rate; weights are checked when loaded).
    In one process every step's loss is checked, so the batch that made it is still at hand; with
    several it reads the statistics summed over every process, so all ranks stop together and none
    waits in a collective."""

    def after_step(self) -> None:
        t = self.trainer
        if t.ctx.world_size == 1:
            self._check(float(t.loss))
        elif t.step_metrics is not None:
            self._check(t.step_metrics["train_loss"])

    def after_epoch(self) -> None:
        self._check(self.trainer.epoch_metrics["train_loss"])

    def _check(self, loss: float) -> None:
        if math.isfinite(loss):
            return
        t = self.trainer
        where = f"loss is {loss} at step {t.state.step} (epoch {t.state.epoch + 1}, batch {t.state.batch_in_epoch})"
        x, y = getattr(t, "batch", (None, None))
        problem = t.task.check_batch(x, y) if x is not None else None
        if problem is not None:
            raise TrainingDiverged(
                f"{where}: {problem} in that batch; the data, not the learning rate: check the dataset's "
                "files (the last good checkpoint is kept)"
            )
        raise TrainingDiverged(
            f"{where} (lr {t.lr:.4g}), with finite inputs and targets: the training diverged; stopped, and the "
            "last good checkpoint is kept. Lower --lr, add warmup (--set schedule.warmup_epochs=1) or clip "
            "gradients (--set optim.clip_grad=1.0)."
        )


class EvalHook(HookBase):
    """The evaluation split after every epoch (does it improve on the best?), and the test split once,
    at the end, on the weights the run folder stands for."""

    def after_epoch(self) -> None:
        t = self.trainer
        t.evaluation = t.evaluate(t.data.eval) if t.data.eval is not None else None
        scalars = t.evaluation.scalars() if t.evaluation is not None else {}
        # best.pt is chosen on a validation split only: a best-on-test pick reports a number chosen on the test set.
        t.improved = t.data.eval_set == "val" and t.task.is_better(scalars, unprefixed(t.state.best))

    def after_train(self) -> None:
        t = self.trainer
        t.test_weights = self._final_weights()
        if t.data.test is None:
            return
        names = t.data.meta.get("classes")
        if t.data.eval_set == "test" and t.evaluation is not None:  # the last epoch's curve point: the same weights
            t.test = t.evaluation.as_dict(names)
        else:
            t.test = t.evaluate(t.data.test).as_dict(names)

    def _final_weights(self) -> str:
        """Load the weights the run folder stands for into the evaluator: best.pt's if the run
        kept one, else the final ones. Returns the checkpoint's name."""
        t = self.trainer
        best = t.run_dir / "best.pt"
        if t.data.eval_set != "val" or not best.is_file():
            return "last.pt"
        t.evaluator.load_state_dict(checkpoint_weights(load_checkpoint(best)), strict=True)
        return "best.pt"


class MetricsWriter(HookBase):
    """A row of steps.csv per logging window, of metrics.csv per epoch (both also to TensorBoard);
    the curves and summary.json at the end. Writing an epoch's row closes the epoch."""

    def after_step(self) -> None:
        t, state = self.trainer, self.trainer.state
        if t.step_metrics is not None:
            epoch = state.epoch + state.batch_in_epoch / t.steps_per_epoch
            t.runlog.log_step({"step": state.step, "epoch": epoch, **t.step_metrics, "lr": t.lr})

    def after_epoch(self) -> None:
        t, state = self.trainer, self.trainer.state
        t.tick()
        scalars = t.evaluation.scalars() if t.evaluation is not None else {}
        row = {
            "epoch": state.epoch + 1,
            "step": state.step,
            "seconds": state.seconds,
            **t.epoch_metrics,
            "lr": t.lr,
            **{f"eval_{k}": v for k, v in scalars.items()},
        }
        state.close_epoch(row, best=t.improved)
        t.epoch_row = row
        t.runlog.log_epoch(row)

    def after_train(self) -> None:
        t = self.trainer
        if not t.ctx.is_main:
            return
        from .plots import plot_curves

        plot_curves(t.runlog.rows, t.run_dir / "curves.png", t.runlog.step_rows, t.task.monitor)
        t.runlog.write_json(
            "summary.json",
            {
                "task": t.task.name,
                "model": t.cfg.model.name,
                "data": t.cfg.data.name,
                "eval_set": t.data.eval_set,
                "splits": t.data.meta.get("splits"),
                "best": t.state.best,
                "last": t.runlog.rows[-1] if t.runlog.rows else {},
                "test": t.test,
                "test_weights": t.test_weights,
                "steps": t.state.step,
                "seconds": t.state.seconds,
                "images_per_second": t.images_per_second,
                "precision": t.precision.mode,
                "device": str(t.device),
                "processes": t.ctx.world_size,
                "torch": torch.__version__,
            },
        )


class Checkpointer(HookBase):
    """last.pt after every epoch (and best.pt when it improved), and mid-epoch every
    ``checkpoint_every`` steps or ``checkpoint_minutes`` since the last save, so a kill at any
    moment loses little work."""

    def before_train(self) -> None:
        self._last_save = time.monotonic()

    def after_step(self) -> None:
        t = self.trainer
        end = t.state.batch_in_epoch == t.steps_per_epoch or t.state.step >= t.total_steps
        if not end and self._due():  # the epoch's end saves anyway
            self._save("last")

    def after_epoch(self) -> None:
        self._save("last")
        if self.trainer.improved:
            self._save("best")

    def _save(self, name: str) -> None:
        self.trainer.checkpoint(name)
        self._last_save = time.monotonic()

    def _due(self) -> bool:
        """Ranks must agree: the clock is rank 0's, shared at log rows."""
        t = self.trainer
        cfg, step = t.cfg, t.state.step
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            return True
        if not cfg.checkpoint_minutes:
            return False
        late = time.monotonic() - self._last_save >= 60 * cfg.checkpoint_minutes
        if not t.ctx.enabled:
            return late
        return step % cfg.log_every == 0 and bool(t.ctx.broadcast(late))


class Progress(HookBase):
    """The console: what the run is, a progress bar in a terminal (without one, in a log file or a
    batch job, a line every ``every`` seconds instead, 30 by default) and a line per epoch."""

    def __init__(self, every: float = PROGRESS_SECONDS):
        self.every = every

    def before_train(self) -> None:
        t = self.trainer
        log.info(
            "run folder %s | %s %s on %s (%s), %d process(es) | %d steps of %d %s%s | evaluating on %s",
            t.run_dir,
            t.task.name,
            t.cfg.model.name,
            t.device,
            t.precision.mode,
            t.ctx.world_size,
            t.total_steps,
            t.data.batch_size,
            t.task.units(t.data.meta),
            f" in {t.cfg.grad_accum_steps} micro-batches" if t.cfg.grad_accum_steps > 1 else "",
            self._eval_description(),
        )
        self._last_line = time.monotonic()

    def before_epoch(self) -> None:
        from tqdm import tqdm

        t, state = self.trainer, self.trainer.state
        skip = state.batch_in_epoch
        self.bar = tqdm(
            total=min(t.steps_per_epoch, t.total_steps - state.step + skip),
            initial=skip,
            leave=False,
            unit="step",
            desc=f"epoch {state.epoch + 1}/{t.epochs}",
            disable=None if (t.cfg.progress and t.ctx.is_main) else True,
        )

    def after_step(self) -> None:
        t = self.trainer
        if t.step_metrics is not None:
            stats = t.step_metrics
            self.bar.set_postfix(
                {k.removeprefix("train_"): _fmt(v) for k, v in stats.items() if k != "images_per_second"}
                | {"img_s": f"{stats['images_per_second']:.0f}"}
            )
        self.bar.update(1)
        if self.bar.disable and t.ctx.is_main:
            self._progress_line()
        if t.state.batch_in_epoch == t.steps_per_epoch or t.state.step >= t.total_steps:
            self.bar.close()  # before the evaluation

    def after_epoch(self) -> None:
        self.bar.close()
        log.info(self._epoch_line(self.trainer.epoch_row))

    def _progress_line(self) -> None:
        t = self.trainer
        if not t.cfg.progress or time.monotonic() - self._last_line < self.every:
            return
        self._last_line = time.monotonic()
        t.tick()
        step, total, batch = t.state.step, t.total_steps, t.cfg.data.batch_size
        rate = t.images_per_second
        eta = (total - step) * batch / max(rate, 1e-9)
        unit = t.task.units(t.data.meta)
        log.info("step %d/%d  loss %.4f  %.0f %s/s  ETA %s", step, total, t.loss.item(), rate, unit, _duration(eta))

    def _epoch_line(self, row: dict[str, Any]) -> str:
        t = self.trainer
        text = f"epoch {row['epoch']}/{t.epochs}  loss {row['train_loss']:.4f}"
        for name in t.task.train_metrics[1:]:
            text += f"  train {name} {_fmt(row[f'train_{name}'])}"
        if t.data.eval_set is not None:
            key = f"eval_{t.task.monitor}"
            text += f"  {t.data.eval_set} {t.task.monitor} {_fmt(row[key])}"
            if t.state.best is not None:
                text += f" (best {_fmt(t.state.best[key])})"
        return text + f"  lr {row['lr']:.4g}  {row['images_per_second']:.0f} {t.task.units(t.data.meta)}/s"

    def _eval_description(self) -> str:
        data = self.trainer.data
        if data.eval_set == "val":
            return "the validation split every epoch (it chooses best.pt); the test split once, at the end"
        if data.eval_set == "test":
            return "the test split every epoch, as a learning curve only (no best.pt)"
        return "the test split once, at the end" if data.test is not None else "nothing (no test split)"


class StepCallbacks(HookBase):
    """``fit(callbacks=...)``: plain functions called after every optimizer step."""

    def __init__(self, callbacks: Sequence[StepCallback]):
        self.callbacks = list(callbacks)

    def after_step(self) -> None:
        t = self.trainer
        for cb in self.callbacks:
            cb(t.state.step, {"loss": t.loss, "epoch": t.state.epoch, "model": t.model})


def unprefixed(row: dict[str, Any] | None) -> dict[str, float] | None:
    """An epoch row's evaluation scalars without their ``eval_`` prefix."""
    if row is None:
        return None
    return {k.removeprefix("eval_"): v for k, v in row.items() if k.startswith("eval_")}


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"
