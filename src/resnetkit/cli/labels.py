"""What a command was given (run folders, checkpoints, tags, model names): short names for plots,
tables and folders, and whether a name means an untrained model."""

from __future__ import annotations

from pathlib import Path


def source_label(source: str) -> str:
    """A run folder's name, a checkpoint's folder/stem, or the tag or name as given."""
    path = Path(source)
    if path.is_dir():
        return path.resolve().name
    if path.is_file():
        return f"{path.resolve().parent.name}/{path.stem}"
    return source


def source_labels(sources: list[str]) -> dict[str, str]:
    """``source_label`` of each source; the source itself where two short labels would collide."""
    labels = {s: source_label(s) for s in sources}
    values = list(labels.values())
    return {s: s if values.count(v) > 1 else v for s, v in labels.items()}


def is_model_name(text: str) -> bool:
    """A registered name alone (no pretrained tag, not a path) means a model at initialization."""
    from ..models import is_model

    return is_model(text) and "." not in text and not Path(text).exists()
