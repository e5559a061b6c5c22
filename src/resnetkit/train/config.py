"""Training configuration: small dataclasses, built from nested dicts that may not hold unknown keys."""

from __future__ import annotations

import dataclasses
import json
import math
import types
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from ..artifacts.cards import MAX_TTA_SHIFT
from ..data.augment import FLIP_MODES, PAD_MODES
from ..data.scenes import SceneSpec


class ConfigError(ValueError):
    """A configuration key or value that resnetkit does not know."""


@dataclass
class ModelConfig:
    name: str = "resnet20"
    overrides: dict = field(default_factory=dict)  # create_model keyword overrides, e.g. {"drop_path_rate": 0.1}
    weights: str | None = None  # start from these weights (fine-tuning): a file or a pretrained tag


@dataclass
class DataConfig:
    name: str = "fashion-mnist"  # a dataset name or an image-folder path
    data_dir: str | None = None
    download: bool = True
    val_size: int = 0  # hold out this many training images for validation (the paper's 45k/5k: 5000)
    test_size: float = 0.1  # an image folder with no val/ or test/ subfolder: this fraction is held out as test
    batch_size: int = 128  # global: split across processes in distributed runs
    eval_batch_size: int = 512
    pad: int = 4
    pad_mode: str = "zeros"
    flip: bool = True
    # "random": each image mirrored with probability 1/2; "alternate": at random in the first
    # epoch, then the other way round each epoch after (airbench; in-memory datasets only).
    flip_mode: str = "random"
    erasing: float = 0.0
    image_size: int = 224  # image folders only
    # The images as 1 (grayscale) or 3 (RGB) channels, converted as Pillow converts a picture (None:
    # as the data is), and the mean/std they are normalized with (None: the data's own statistics).
    # finetune takes all three from the source model's record unless told otherwise (timm's
    # resolve_data_config): a model is fed as it was trained.
    channels: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    workers: int = 2  # image folders only
    skip_bad_images: bool = False  # image folders: train without the files a scan finds unreadable (listed in the run)
    classes: str | None = None  # keep these classes only, relabelled in this order: "0-4", "5,7,9", "Sandal,Bag"
    # Train on exactly K images of each class, a seeded draw from the training split (the
    # evaluation sets stay whole); the run folder records which (train_subset.json).
    labels_per_class: int | None = None
    # A training set smaller than this is repeated (whole copies, each augmented anew) until an
    # epoch holds at least this many images: a few labels train in fewer, longer epochs.
    min_epoch_images: int = 0
    scenes: SceneSpec = field(default_factory=SceneSpec)  # fashion-mnist-scenes: how scenes are drawn
    # Sequences (ucr:NAME, fortunes, .ts/.npz/CSV, text folders): a series or text longer than this
    # is an error naming it (None: any length the data holds).
    max_length: int | None = None
    # How series are normalised: "series" (each on its own, per channel: UCR practice), "dataset"
    # (the training split's per-channel mean/std, kept in the model's record so every tool applies
    # them to new series) or "none" (the values as read).
    normalize: str = "series"
    # At most this share of the training set in a batch (a small one trains in several steps an
    # epoch): dl-4-tsc's min(N/10, 64) is batch_size 64 with batch_fraction 0.1.
    batch_fraction: float | None = None


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = True  # the paper decays every weight; False exempts norms and biases
    label_smoothing: float = 0.0
    clip_grad: float | None = None
    scale_lr: bool = False  # distributed: lr *= global_batch / 256 (Goyal et al. 2017)
    # Lookahead (Zhang et al. 2019) around the optimizer: every k steps (0: off) the slow weights
    # move alpha of the way to the fast ones (the paper's k=5, alpha=0.5).
    lookahead_steps: int = 0
    lookahead_alpha: float = 0.5

    def __post_init__(self) -> None:
        # Caught when the configuration is read, not as a NaN loss twenty steps in.
        for key in ("lr", "weight_decay", "momentum", "label_smoothing"):
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"optim.{key}: must be a finite number >= 0, got {value}")
        if self.momentum >= 1:
            raise ConfigError(f"optim.momentum: must be below 1, got {self.momentum}")
        if self.label_smoothing >= 1:
            raise ConfigError(f"optim.label_smoothing: must be below 1, got {self.label_smoothing}")
        if self.lookahead_steps < 0:
            raise ConfigError(f"optim.lookahead_steps: must be >= 0 (0: no Lookahead), got {self.lookahead_steps}")
        if not (math.isfinite(self.lookahead_alpha) and 0 < self.lookahead_alpha <= 1):
            raise ConfigError(f"optim.lookahead_alpha: must be in (0, 1], got {self.lookahead_alpha}")
        if self.clip_grad is not None and not (math.isfinite(self.clip_grad) and self.clip_grad > 0):
            raise ConfigError(f"optim.clip_grad: must be a finite number > 0 (or null), got {self.clip_grad}")


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # step | cosine | onecycle | constant | plateau
    warmup_steps: int = 0
    warmup_epochs: float = 0.0
    warmup: str = "linear"  # linear | constant (the paper's ResNet-110: lr/10 for ~400 steps)
    milestones: tuple[float, ...] = (0.5, 0.75)  # step: fractions of the run (32k/64k, 48k/64k)
    gamma: float = 0.1
    min_lr: float = 0.0  # cosine/onecycle/plateau floor, as a fraction of lr
    patience: int = 50  # plateau: epochs without a lower training loss before the lr is multiplied by gamma


TRANSFER_MODES = ("none", "finetune", "linear-probe", "lp-ft")
BN_MODES = ("frozen", "train", "eval")


@dataclass
class TransferConfig:
    """Fine-tuning from ``model.weights`` (``resnetkit finetune``). ``freeze``: none, stem, stageK
    (the stem and stages 1..K) or backbone. ``bn``: frozen (the BatchNorm statistics of frozen
    parts stay fixed), train (every BN keeps adapting, frozen parts too) or eval (none moves)."""

    mode: str = "none"  # none | finetune | linear-probe | lp-ft
    freeze: str = "none"
    head_lr: float | None = None  # default: optim.lr
    backbone_lr: float | None = None  # default: optim.lr
    layer_decay: float | None = None  # each stage below the last gets this times the lr of the one above
    bn: str = "frozen"
    lp_fraction: float = 0.5  # lp-ft: the share of the run's steps spent linear probing first
    new_head: bool = True  # a fresh head even when the source's has the right size (new classes)

    def __post_init__(self) -> None:
        if self.mode not in TRANSFER_MODES:
            raise ConfigError(f"transfer.mode: expected one of {', '.join(TRANSFER_MODES)}, got {self.mode!r}")
        if self.bn not in BN_MODES:
            raise ConfigError(f"transfer.bn: expected one of {', '.join(BN_MODES)}, got {self.bn!r}")
        stage = self.freeze.removeprefix("stage")
        if self.freeze not in ("none", "stem", "backbone") and not (
            self.freeze.startswith("stage") and stage.isdigit()
        ):
            raise ConfigError(
                f"transfer.freeze: expected none, stem, stage1, stage2, ... or backbone, got {self.freeze!r}"
            )
        for key in ("head_lr", "backbone_lr", "layer_decay"):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"transfer.{key}: must be a finite number >= 0 (or null), got {value}")
        if not 0.0 < self.lp_fraction < 1.0:
            raise ConfigError(f"transfer.lp_fraction: must lie in (0, 1), got {self.lp_fraction}")


@dataclass
class TrainConfig:
    # What the model learns. None: what the model implies (a registered model is registered for one
    # task), so --task is needed only to say it twice; a task that contradicts the model is an error.
    task: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    epochs: int = 30
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    # Each optimizer step accumulates the gradients of N micro-batches of data.batch_size / N (which
    # must divide): the optimization of the whole batch in a micro-batch's activation memory, BatchNorm
    # aside (it normalizes each micro-batch by its own statistics). Steps count optimizer steps.
    grad_accum_steps: int = 1
    seed: int = 0
    deterministic: bool = False
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    channels_last: bool = True
    compile: bool = False
    # Activation checkpointing (model.set_grad_checkpointing): activations of each segment of
    # residual units are recomputed in the backward, a fraction of the memory for one more forward.
    grad_checkpointing: bool = False
    # Before the first step, estimate its peak memory and refuse (one line, exit 2) a run that would
    # not fit in what the machine has (train/memory_guard.py), rather than be killed by the OS.
    memory_guard: bool = True
    ema_decay: float = 0.0  # 0: no weight EMA
    tta_flip: bool = False  # evaluate on image + mirror image
    tta_shift: int = 0  # pixels: also evaluate on each view moved this far left and right (<= MAX_TTA_SHIFT)
    # Without a validation split, also measure the test set after every epoch, as a learning curve
    # only (He et al. 2015 plot test error during training, Fig. 6); no checkpoint is chosen on it.
    test_curve: bool = False
    sync_bn: bool = False  # distributed only
    device: str = "auto"
    out: str = "runs"
    run_name: str | None = None
    progress: bool = True
    log_every: int = 50  # optimizer steps between rows of steps.csv (training loss, accuracy, lr)
    # last.pt is also written mid-epoch: every this many steps, and when this many minutes have
    # passed since the last save (0: off), so a kill at any moment loses little work.
    checkpoint_every: int | None = None
    checkpoint_minutes: float = 5.0
    recipe: str | None = None

    def __post_init__(self) -> None:
        self.task = _task_of(self.task, self.model.name)
        for key in ("epochs", "log_every", "grad_accum_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.data.batch_size % self.grad_accum_steps:
            raise ConfigError(
                f"data.batch_size {self.data.batch_size} does not divide into grad_accum_steps="
                f"{self.grad_accum_steps} micro-batches (the batch size is the whole batch of an optimizer step)"
            )
        d = self.data
        if d.channels is not None and d.channels not in (1, 3):
            raise ConfigError(f"data.channels: 1 (grayscale) or 3 (RGB), got {d.channels}")
        if (d.mean is None) != (d.std is None):
            raise ConfigError("data.mean and data.std: give both or neither")
        if d.mean is not None and d.std is not None:
            if len(d.mean) != len(d.std) or not all(math.isfinite(v) for v in [*d.mean, *d.std]):
                raise ConfigError(f"data.mean {d.mean}, data.std {d.std}: one finite value per channel each")
            if min(d.std) <= 0:
                raise ConfigError(f"data.std: every value must be positive, got {d.std}")
        if not 0.0 < self.data.test_size < 1.0:
            raise ConfigError(f"data.test_size: must lie in (0, 1), got {self.data.test_size}")
        if self.data.val_size < 0:
            raise ConfigError(f"data.val_size: must be 0 (none) or more, got {self.data.val_size}")
        if not 0 <= self.tta_shift <= MAX_TTA_SHIFT:
            raise ConfigError(f"tta_shift: pixels from 0 (off) to {MAX_TTA_SHIFT}, got {self.tta_shift}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every: must be at least 1 (or null), got {self.checkpoint_every}")
        if not math.isfinite(self.checkpoint_minutes) or self.checkpoint_minutes < 0:
            raise ConfigError(f"checkpoint_minutes: must be a finite number >= 0, got {self.checkpoint_minutes}")
        if self.data.batch_fraction is not None and not 0 < self.data.batch_fraction <= 1:
            raise ConfigError(f"data.batch_fraction: must lie in (0, 1] (or null), got {self.data.batch_fraction}")
        # Checked here too (AugmentConfig checks them when the loader is built) for an early
        # error that names the key.
        if d.flip_mode not in FLIP_MODES:
            raise ConfigError(f"data.flip_mode: {d.flip_mode!r}, expected one of {', '.join(FLIP_MODES)}")
        if d.pad_mode not in PAD_MODES:
            raise ConfigError(f"data.pad_mode: {d.pad_mode!r}, expected one of {', '.join(PAD_MODES)}")
        if self.data.normalize not in ("series", "dataset", "none"):
            raise ConfigError(f"data.normalize: {self.data.normalize!r}, expected one of series, dataset, none")
        if self.data.max_length is not None and self.data.max_length < 1:
            raise ConfigError(f"data.max_length: must be at least 1 (or null), got {self.data.max_length}")
        if self.data.labels_per_class is not None and self.data.labels_per_class < 1:
            raise ConfigError(f"data.labels_per_class: must be at least 1 (or null), got {self.data.labels_per_class}")
        if self.transfer.mode != "none" and not self.model.weights:
            raise ConfigError(f"transfer.mode={self.transfer.mode}: needs pretrained weights (model.weights)")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: must be at least 1 (or null), got {self.max_steps}")

    @property
    def task_name(self) -> str:
        """The task trained: the one named, or the one the model implies (resolved when made)."""
        assert self.task is not None, "resolved in __post_init__"
        return self.task

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return _build(cls, values, "")


def _task_of(task: str | None, model: str) -> str:
    """The task a config trains: the one it names, or the one its model is registered for."""
    from ..models import is_model, model_task, trains_for

    implied = model_task(model) if is_model(model) else None
    if task is None:
        return implied or "classification"
    if implied is not None and not trains_for(model, task):
        raise ConfigError(
            f"--task {task}: --model {model} is a {implied} model (leave --task out: the model implies it)"
        )
    return task


def _build(cls, values: dict, prefix: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"{prefix.rstrip('.') or 'top level'} takes {', '.join(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, prefix + name)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a value against its field's type; ints are accepted for floats, lists for tuples."""
    args = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{key}: may not be null")
    typ = next(a for a in args if a is not type(None))
    origin = get_origin(typ) or typ
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
            raise ConfigError(f"{key}: expected a list of numbers, got {value!r}")
        return tuple(float(v) for v in value)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (isinstance(value, bool) and typ is not bool) or not isinstance(value, origin):
        raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")
    return value


def merge(base: dict, update: dict) -> dict:
    """Nested dict update: ``update`` wins key by key."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "overrides" else v
    return out


def updates(given: dict[tuple[str, ...], Any], assignments: list[str] | None = None) -> dict:
    """Nested config updates from command-line values: ``{("optim", "lr"): 0.05}`` becomes
    ``{"optim": {"lr": 0.05}}`` (None means not given), then each ``KEY=VALUE`` of ``--set``."""
    out: dict = {}
    for path, value in given.items():
        if value is not None:
            for part in reversed(path):
                value = {part: value}
            out = merge(out, value)
    for text in assignments or ():
        out = merge(out, parse_assignment(text))
    return out


def parse_assignment(text: str) -> dict:
    """'optim.lr=0.05' -> {'optim': {'lr': 0.05}}; the value is read as JSON when it parses."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=0.05")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON config file; a syntax error names the file and the line. Read within
    ``config_parse``'s limits (size, nesting, values with YAML aliases expanded, string keys)."""
    from .config_parse import MAX_CONFIG_BYTES, ConfigTextError, parse_json, parse_yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    with path.open("rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes, the most a config file holds: not a config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = parse_yaml(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
            problem = getattr(e, "problem", None) or getattr(e, "context", None) or "not valid YAML"
            raise ConfigError(f"{path}: YAML syntax error at {where}: {problem}") from None
        except ConfigTextError as e:
            raise ConfigError(f"{path}: {e}") from None
        except (ValueError, OverflowError) as e:  # a value Python cannot hold (an int of 5,000 digits, 2001-13-45)
            raise ConfigError(f"{path}: a value that cannot be read ({' '.join(str(e).split())}); correct it") from None
        data = {} if data is None else data
    else:
        try:
            data = parse_json(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}") from None
        except ConfigTextError as e:
            raise ConfigError(f"{path}: {e}") from None
        except ValueError as e:  # an int of 5,000 digits
            raise ConfigError(f"{path}: a value that cannot be read ({' '.join(str(e).split())}); correct it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}")
    return data
