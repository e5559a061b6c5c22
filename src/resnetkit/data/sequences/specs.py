"""Which reader a dataset spec names, and which files hold its train and test splits.

- ``ucr:<Name>``: a dataset aeon bundles, its archive's own split.
- ``fortunes``: Debian's fortunes corpus, split by ``load_sequences``.
- a file: ``.ts``, ``.npz``, ``.tsv`` or ``.csv`` (UCR-style series; or texts when its first line
  is the header ``text,label``), split by ``load_sequences``.
- a folder holding one train and one test file: ``<Name>_TRAIN.<ext>`` and ``<Name>_TEST.<ext>``
  (the archive's naming) or ``train.<ext>`` and ``test.<ext>``, for the extensions above.
- a folder of texts: ``DIR/<class>/*.txt`` (split by ``load_sequences``), or ``DIR/train/<class>/``
  with ``DIR/test/<class>/``."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import DatasetError
from ..folder import IMAGE_EXTENSIONS
from .arrays import read_npz
from .delimited import read_delimited
from .fortunes import read_fortunes
from .items import ReadItems
from .text_csv import is_text_csv, read_text_csv
from .text_folder import TEXT_EXTENSION, read_text_folder
from .ts_format import read_ts
from .ucr import read_ucr, ucr_name

SERIES_EXTENSIONS = (".ts", ".npz", ".tsv", ".csv")
_PEEK = 200  # entries looked at to tell a text folder from an image folder

Reader = Callable[[int | None], ReadItems]  # max_length -> the items


@dataclass(frozen=True)
class Plan:
    """How to read a spec: its train and test readers, or one reader whose items are split."""

    source: str
    train: Reader
    test: Reader | None = None  # None: split ``train``'s items, seeded and stratified


def file_reader(path: Path) -> Reader:
    suffix = path.suffix.lower()
    if suffix == ".ts":
        return partial(read_ts, path)
    if suffix == ".npz":
        return partial(read_npz, path)
    if suffix == ".csv" and is_text_csv(path):
        return partial(read_text_csv, path)
    return partial(read_delimited, path)


def _split_files(folder: Path) -> tuple[Path, Path] | None:
    """The folder's train and test files, or None when it has neither. When several formats are
    there (the archive's zips hold ``.ts``, ``.arff`` and ``.txt``; aeon's folders ``.ts`` and
    ``.tsv``), the first of ``SERIES_EXTENSIONS`` with one train and one test file is read."""
    found: dict[tuple[str, str], list[Path]] = {}
    for entry in os.scandir(folder):
        path = Path(entry.path)
        suffix, stem = path.suffix.lower(), path.stem.lower()
        if not entry.is_file() or suffix not in SERIES_EXTENSIONS:
            continue
        for split in ("train", "test"):
            if stem == split or stem.endswith(f"_{split}"):
                found.setdefault((suffix, split), []).append(path)
    if not found:
        return None
    for suffix in SERIES_EXTENSIONS:
        train, test = found.get((suffix, "train"), []), found.get((suffix, "test"), [])
        if len(train) == len(test) == 1:
            return train[0], test[0]
        if len(train) > 1 or len(test) > 1:
            listed = ", ".join(sorted(p.name for p in train + test))
            raise DatasetError(f"{folder}: several {suffix} train or test files ({listed}); keep one of each")
    listed = ", ".join(sorted(p.name for paths in found.values() for p in paths))
    raise DatasetError(
        f"{folder}: expected a train and a test file of one format (NAME_TRAIN.ts and NAME_TEST.ts, "
        f"train.npz and test.npz, ...), found {listed}"
    )


def _holds_texts(folder: Path) -> bool:
    """Whether ``folder``'s class subfolders hold ``.txt`` files and no images (a peek, not a walk)."""
    try:
        classes = [entry for entry in itertools.islice(os.scandir(folder), _PEEK) if entry.is_dir()]
        names = [
            entry.name.lower()
            for sub in classes
            for entry in itertools.islice(os.scandir(sub.path), _PEEK)
            if entry.is_file()
        ]
    except OSError:
        return False
    return any(n.endswith(TEXT_EXTENSION) for n in names) and not any(n.endswith(IMAGE_EXTENSIONS) for n in names)


def is_sequence_spec(spec: str) -> bool:
    """Whether ``spec`` names sequence data: ``ucr:<Name>``, ``fortunes``, a path ending in
    ``.ts``, ``.npz``, ``.tsv`` or ``.csv`` (found or not), or a folder of such split files or of
    texts. Image names and image folders are not."""
    text = str(spec)
    if text.lower().startswith("ucr:") or text.lower() == "fortunes":
        return True
    path = Path(text)
    if path.suffix.lower() in SERIES_EXTENSIONS:
        return True
    if not path.is_dir():
        return False
    try:
        if _split_files(path) is not None:
            return True
    except (DatasetError, OSError):
        return True  # split files, but not one of each: load_sequences says what is wrong
    return _holds_texts(path) or ((path / "train").is_dir() and _holds_texts(path / "train"))


def plan(spec: str, root: str | Path | None = None) -> Plan:
    """The readers of ``spec`` (see the module's docstring)."""
    text = str(spec)
    if text.lower().startswith("ucr:"):
        name = ucr_name(text[4:], root)
        return Plan(
            f"ucr:{name}",
            lambda max_length: read_ucr(name, "train", root, max_length),
            lambda max_length: read_ucr(name, "test", root, max_length),
        )
    if text.lower() == "fortunes":
        return Plan("fortunes", lambda max_length: read_fortunes(root, max_length))
    path = Path(text)
    if path.is_file():
        if path.suffix.lower() not in SERIES_EXTENSIONS:
            raise DatasetError(f"{path}: not a sequence file (expected {', '.join(SERIES_EXTENSIONS)})")
        return Plan(str(path), file_reader(path))
    if not path.is_dir():
        what = "file" if path.suffix else "file or folder"
        raise DatasetError(f"{path}: {what} not found")
    files = _split_files(path)
    if files is not None:
        return Plan(str(path), file_reader(files[0]), file_reader(files[1]))
    if (path / "train").is_dir() and (path / "test").is_dir():
        return Plan(str(path), partial(read_text_folder, path / "train"), partial(read_text_folder, path / "test"))
    if _holds_texts(path):
        return Plan(str(path), partial(read_text_folder, path))
    raise DatasetError(
        f"{path}: neither split series files (NAME_TRAIN.ts and NAME_TEST.ts, train.npz and test.npz, ...) "
        f"nor class folders of {TEXT_EXTENSION} files"
    )
