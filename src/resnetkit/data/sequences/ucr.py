"""The UCR/UEA classification datasets that ship inside the ``aeon`` wheel, loaded by name.

aeon bundles a few archive datasets with its code (GunPoint, ArrowHead, ItalyPowerDemand,
OSULeaf, BasicMotions, JapaneseVowels, ...: ``ucr_names()``). They are read with aeon's
``load_classification`` from that folder only: a name aeon does not bundle is refused here, before
aeon is asked, because aeon would download it. aeon lowercases labels as it reads them
("Standing" becomes "standing"). Each dataset keeps the archive's own train/test split.

A ``root`` holding ``<Name>/<Name>_TRAIN.ts`` and ``<Name>_TEST.ts`` (a downloaded archive,
aeon's layout) is read instead of the bundled folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .errors import short
from .items import ReadItems, check_length, pad

_HEADER_LINES = 200


def aeon_data_dir() -> Path | None:
    """aeon's folder of bundled datasets, found without importing aeon; None without aeon."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "datasets" / "data"


def _is_classification(train: Path) -> bool:
    """Whether a .ts header says ``@classLabel true`` (regression files say ``@targetLabel``)."""
    try:
        with train.open("rb") as file:
            for _, raw in zip(range(_HEADER_LINES), file, strict=False):
                words = raw.decode("utf-8", "replace").lower().split()
                if words[:1] == ["@data"]:
                    return False
                if words[:2] == ["@classlabel", "true"]:
                    return True
    except OSError:
        return False
    return False


def ucr_names(root: str | Path | None = None) -> list[str]:
    """The classification datasets in ``root`` (default: those the installed aeon bundles)."""
    folder = Path(root) if root is not None else aeon_data_dir()
    if folder is None or not folder.is_dir():
        return []
    return sorted(
        (
            entry.name
            for entry in folder.iterdir()
            if (entry / f"{entry.name}_TEST.ts").is_file() and _is_classification(entry / f"{entry.name}_TRAIN.ts")
        ),
        key=str.lower,
    )


def ucr_name(name: str, root: str | Path | None = None) -> str:
    """The dataset ``name`` spells (any case), or an error listing those there are."""
    names = ucr_names(root)
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    if root is not None:
        where = f"in {root} (as {root}/<Name>/<Name>_TRAIN.ts and _TEST.ts)"
    elif aeon_data_dir() is None:
        raise DatasetError(f"ucr:{short(name)}: aeon is not installed; install it with pip install 'resnetkit[series]'")
    else:
        where = "among the datasets the installed aeon bundles (nothing is downloaded)"
    raise DatasetError(f"ucr:{short(name)}: not found {where}; there are: {', '.join(names) or 'none'}")


def read_ucr(name: str, split: str, root: str | Path | None = None, max_length: int | None = None) -> ReadItems:
    """One split of a bundled (or ``root``'s) dataset, as aeon reads it; NaN refused."""
    name = ucr_name(name, root)
    folder = Path(root) if root is not None else aeon_data_dir()
    assert folder is not None  # ucr_name found the dataset there
    path = folder / name / f"{name}_{split.upper()}.ts"
    try:
        from aeon.datasets import load_classification
    except ImportError as e:
        raise DatasetError(f"ucr:{name}: aeon cannot be imported ({e}); pip install 'resnetkit[series]'") from None
    try:
        x, y = load_classification(name, split=split, extract_path=str(folder))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: aeon cannot read it ({short(str(e), 200)})") from None
    arrays = [np.asarray(series, dtype=np.float64) for series in x]
    for i, series in enumerate(arrays):
        check_length(series.shape[-1], max_length, f"{path}, series {i + 1}")
        if not np.isfinite(series).all():
            raise DatasetError(f"{path}, series {i + 1}: NaN or infinite values (refused, not imputed)")
    values, lengths = pad(arrays, np.float32, str(path))
    return ReadItems(
        values, lengths, [str(label) for label in y], lambda i: f"{path}, series {i + 1}", "series", f"ucr:{name}"
    )
