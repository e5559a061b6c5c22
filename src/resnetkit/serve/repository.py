"""Which models one server serves: ``SOURCE`` arguments (``NAME=SOURCE`` names one) and a model
repository laid out as Triton's (``DIR/NAME/VERSION/``, numbered version folders, each holding
one model file or a run folder's files). The highest version of each model is served, as
Triton's default version policy (``latest: 1``) does."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .. import infer
from .seam import Slot, served_name

log = logging.getLogger("resnetkit.serve")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MODEL_FILES = (".pt", ".safetensors", ".onnx")


def source_slots(sources: list[str]) -> list[Slot]:
    slots = []
    for source in sources:
        name, sep, rest = source.partition("=")
        if sep and NAME.fullmatch(name) and not Path(source).exists():
            slots.append(Slot(name, rest))
        else:
            slots.append(Slot(served_name(source), source))
    _check_names(slots)
    return slots


def repository_slots(root: str) -> list[Slot]:
    """A slot per model folder of ``root``; one without a usable version is a slot that failed
    to load (reported by the server, not fatal to the others)."""
    folder = Path(root)
    if not folder.is_dir():
        raise ValueError(f"--model-repository {root}: no such folder")
    slots = []
    for model in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not NAME.fullmatch(model.name):
            raise ValueError(f"--model-repository {root}: {model.name!r} is not a model name (letters, digits, _ . -)")
        versions = sorted((int(v.name), v) for v in model.iterdir() if v.is_dir() and v.name.isdigit())
        if not versions:
            slots.append(Slot(model.name, str(model), error=f"{model}: no numbered version folder (e.g. {model}/1/)"))
            continue
        number, path = versions[-1]
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix in MODEL_FILES)
        source = str(files[0]) if len(files) == 1 else str(path)  # several files: a run folder
        slots.append(Slot(model.name, source, version=str(number)))
    if not slots:
        raise ValueError(f"--model-repository {root}: no model folders (DIR/NAME/VERSION/ holding a model)")
    _check_names(slots)
    return slots


def _check_names(slots: list[Slot]) -> None:
    seen: dict[str, str] = {}
    for slot in slots:
        if slot.name in seen:
            raise ValueError(
                f"two models would be served as {slot.name!r} ({seen[slot.name]} and {slot.source}); "
                "name one with NAME=SOURCE"
            )
        seen[slot.name] = slot.source


def load_slots(slots: list[Slot], strict: bool) -> None:
    """Each slot's model loaded; a failure is one line in the log and the slot's error, or, when
    ``strict`` (one model, or nothing else to serve), the error itself."""
    for slot in slots:
        if slot.error is not None or slot.model is not None:
            continue
        try:
            slot.model = infer.load_source(slot.source)
        except Exception as e:
            if strict:
                raise
            slot.error = str(e).splitlines()[0] if str(e) else type(e).__name__
            log.error("model %s: could not be loaded: %s", slot.name, slot.error)
    failed = [s for s in slots if s.error is not None]
    if failed and len(failed) == len(slots):
        raise ValueError(f"no model could be loaded: {'; '.join(f'{s.name}: {s.error}' for s in failed)}")
