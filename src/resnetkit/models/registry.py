"""Model registry: names to builders, plus the pretrained tags shipped in ``resnetkit/weights``."""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Callable
from pathlib import Path

from torch import nn

Builder = Callable[..., nn.Module]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
TASKS = ("classification", "segmentation", "detection", "sequence")

_builders: dict[str, Builder] = {}
_families: dict[str, Callable[..., nn.Module]] = {}
_tasks: dict[str, str] = {}


def register_model(
    family: Callable[..., nn.Module], name: str | None = None, task: str = "classification"
) -> Callable[[Builder], Builder]:
    """Register a builder under ``name`` (its function name by default); ``family`` is what it
    builds (a class or a function), whose keyword arguments are the overrides ``create_model``
    accepts; ``task`` is what the model predicts (``list_models(task=...)`` filters on it)."""
    if task not in TASKS:
        raise ValueError(f"task {task!r}: expected one of {', '.join(TASKS)}")

    def wrap(fn: Builder) -> Builder:
        key = name or fn.__name__
        if key in _builders:
            raise ValueError(f"model {key!r} is registered twice")
        _builders[key], _families[key], _tasks[key] = fn, family, task
        return fn

    return wrap


def split_model_name(name: str) -> tuple[str, str | None]:
    """'resnet20.fashion_mnist' -> ('resnet20', 'fashion_mnist'), as timm's pretrained tags."""
    base, _, tag = name.partition(".")
    return base, tag or None


def _check_known(name: str) -> None:
    if name not in _builders:
        close = difflib.get_close_matches(name, _builders, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `resnetkit info` lists them"
        raise ValueError(f"unknown model {name!r}{hint}")


def model_entrypoint(name: str) -> Builder:
    _check_known(name)
    return _builders[name]


def model_family(name: str) -> Callable[..., nn.Module]:
    _check_known(name)
    return _families[name]


def model_task(name: str) -> str:
    """``"classification"``, ``"segmentation"``, ``"detection"`` or ``"sequence"``."""
    _check_known(split_model_name(name)[0])
    return _tasks[split_model_name(name)[0]]


def trains_for(name: str, task: str) -> bool:
    """Whether model ``name`` may be trained (and saved) for ``task``: the task it is registered
    for, or ``sequence`` for any classifier, since every classifier family builds in 1-D."""
    registered = model_task(name)
    return task == registered or (task, registered) == ("sequence", "classification")


def is_model(name: str) -> bool:
    return split_model_name(name)[0] in _builders


def list_models(
    pattern: str | list[str] = "*", pretrained: bool = False, task: str | None = "classification"
) -> list[str]:
    """Registered names matching a glob (or any of several); with ``pretrained=True``, the
    ``name.tag`` of every shipped weight instead. Classifiers by default; ``task="detection"``
    or ``"segmentation"`` lists the dense models, ``task=None`` every model."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task {task!r}: expected one of {', '.join(TASKS)}")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = list_pretrained() if pretrained else sorted(_builders, key=_natural_key)
    return [
        n
        for n in names
        if any(fnmatch.fnmatch(n, p) for p in patterns) and (task is None or _tasks[split_model_name(n)[0]] == task)
    ]


def _natural_key(name: str) -> list:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_pretrained() -> list[str]:
    """The pretrained tags shipped in the wheel (``resnet20.fashion_mnist``, ...), sorted; each is a
    SOURCE every command and ``load_model`` accept."""
    return sorted(p.name[: -len(".json")] for p in WEIGHTS_DIR.glob("*.json"))


def get_pretrained_cfg(name: str, tag: str | None) -> dict:
    """The JSON card shipped beside ``name.tag.safetensors``; the first tag when none is given."""
    tags = [t for t in list_pretrained() if split_model_name(t)[0] == name]
    if not tags:
        raise ValueError(
            f"no pretrained weights ship with resnetkit for {name!r} "
            f"(shipped: {', '.join(list_pretrained()) or 'none'}); "
            "load your own with create_model(..., weights='file.safetensors')"
        )
    full = f"{name}.{tag}" if tag else tags[0]
    if full not in tags:
        raise ValueError(f"no pretrained tag {full!r}; {name} has {', '.join(tags)}")
    cfg = json.loads((WEIGHTS_DIR / f"{full}.json").read_text())
    cfg["file"] = str(WEIGHTS_DIR / f"{full}.safetensors")
    cfg["tag"] = full
    return cfg
