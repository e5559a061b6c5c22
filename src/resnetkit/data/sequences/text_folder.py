"""People's own texts as files: ``DIR/<class>/<name>.txt``, one text a file (subfolders of a
class folder are searched too), classes named by their folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .items import ReadItems, check_count, check_length, pad
from .limits import MAX_LENGTH
from .texts import text_bytes

TEXT_EXTENSION = ".txt"


def text_files(root: Path) -> list[tuple[Path, str]]:
    """(file, class folder name) of every ``.txt`` under ``root/<class>/``, sorted."""
    if not root.is_dir():
        raise DatasetError(f"{root}: text folder not found")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise DatasetError(f"{root}: no class subfolders (expected {root}/<class>/<name>{TEXT_EXTENSION})")
    found: list[tuple[Path, str]] = []
    empty = []
    for name in classes:
        before = len(found)
        for folder, _, files in sorted(os.walk(root / name, followlinks=True)):
            for file in sorted(files):
                if file.lower().endswith(TEXT_EXTENSION):
                    found.append((Path(folder, file), name))
                    check_count(len(found), str(root))
        if len(found) == before:
            empty.append(name)
    if empty:
        raise DatasetError(f"{root}: no {TEXT_EXTENSION} files in class folder(s) {', '.join(empty)}")
    return found


def read_text_folder(root: str | Path, max_length: int | None = None) -> ReadItems:
    """The texts (UTF-8 bytes) of a class-per-folder tree and their class names."""
    root = Path(root)
    files = text_files(root)
    arrays = []
    for path, _ in files:
        try:
            size = path.stat().st_size
            if size > (max_length or MAX_LENGTH) + 16:  # refused before reading; 16: a BOM and line ends
                check_length(size, max_length, str(path), unit="bytes")
            data = path.read_bytes()
        except OSError as e:
            raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
        arrays.append(text_bytes(data, str(path), max_length))
    values, lengths = pad(arrays, np.uint8, str(root))
    return ReadItems(values, lengths, [label for _, label in files], lambda i: str(files[i][0]), "text", str(root))
