"""Debian's ``fortunes`` corpus as a text classification task: which file a fortune is from.

The files of ``/usr/share/games/fortunes/`` (``apt-get install fortunes``) hold short texts
separated by lines holding only ``%``; each file without an extension that has its ``.dat``
index beside it (as ``fortune`` itself reads them) is a category named by the file. The
``off/`` folder (offensive fortunes) and the ``.dat`` and ``.u8`` files are skipped. Rules, in
this order, each logged with its count:

- a fortune longer than ``max_length`` bytes (default ``FORTUNE_MAX_LENGTH``, 1024: 98.7% of
  them are shorter) is dropped, not truncated;
- a text found in two categories is dropped from both (its label is ambiguous), and one found
  twice in one category is kept once (so no text is in both train and test);
- a category with fewer than ``MIN_FORTUNES`` (100) fortunes left is dropped.

The test split is a seeded, stratified 20% (``load_sequences``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .errors import short
from .items import ReadItems, pad
from .limits import MAX_LENGTH, MAX_TEXT_FILE_BYTES
from .texts import text_bytes

log = logging.getLogger(__name__)

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNE_MAX_LENGTH = 1024
MIN_FORTUNES = 100


def fortune_files(root: Path) -> list[Path]:
    """The category files of a fortune folder, sorted by name."""
    if not root.is_dir():
        raise DatasetError(f"{root}: fortunes not found; install them with `apt-get install fortunes` (Debian, Ubuntu)")
    files = sorted(
        path for path in root.iterdir() if path.is_file() and not path.suffix and path.with_suffix(".dat").is_file()
    )
    if not files:
        raise DatasetError(f"{root}: no fortune files (a file without extension beside its .dat index)")
    return files


def split_fortunes(data: bytes) -> list[tuple[int, bytes]]:
    """(byte offset, text) of each fortune in one file's bytes; empty ones are left out."""
    found, start, offset = [], 0, 0
    for line in data.splitlines(keepends=True):
        if line.rstrip(b"\r\n") == b"%":
            found.append((start, data[start:offset]))
            start = offset + len(line)
        offset += len(line)
    found.append((start, data[start:]))
    return [(at, text) for at, text in found if text.strip()]


def read_fortunes(root: str | Path | None = None, max_length: int | None = None) -> ReadItems:
    """The fortunes of the categories the rules keep (see the module's docstring)."""
    root = Path(root) if root is not None else FORTUNES_DIR
    limit = max_length if max_length is not None else FORTUNE_MAX_LENGTH
    texts: dict[bytes, set[str]] = defaultdict(set)
    first: dict[bytes, tuple[str, np.ndarray]] = {}
    too_long = 0
    for path in fortune_files(root):
        size = path.stat().st_size
        if size > MAX_TEXT_FILE_BYTES:
            raise DatasetError(f"{path}: {size:,} bytes, past the limit of {MAX_TEXT_FILE_BYTES:,} for a fortune file")
        for at, text in split_fortunes(path.read_bytes()):
            body = text.rstrip(b"\r\n")
            if len(body) > limit:
                too_long += 1
                continue
            array = text_bytes(text, f"{path}, byte offset {at}", min(limit, MAX_LENGTH), at)
            texts[body].add(path.name)
            first.setdefault(body, (path.name, array))
    ambiguous = [body for body, names in texts.items() if len(names) > 1]
    for body in ambiguous:
        del first[body]
    by_category: dict[str, list[np.ndarray]] = defaultdict(list)
    for category, array in first.values():
        by_category[category].append(array)
    kept = sorted(name for name, items in by_category.items() if len(items) >= MIN_FORTUNES)
    dropped = sorted(set(by_category) - set(kept))
    log.warning(
        "fortunes: %d longer than %d bytes dropped, %d found in two categories dropped; %d categories of at least %d "
        "kept, %d dropped (%s)",
        too_long, limit, len(ambiguous), len(kept), MIN_FORTUNES, len(dropped), short(", ".join(dropped), 200),
    )  # fmt: skip
    if len(kept) < 2:
        raise DatasetError(f"{root}: {len(kept)} fortune categories of at least {MIN_FORTUNES} fortunes; need 2")
    arrays = [array for name in kept for array in by_category[name]]
    labels = [name for name in kept for _ in by_category[name]]
    values, lengths = pad(arrays, np.uint8, str(root))
    # Texts are identified by content, not by file line: a message names the category file.
    return ReadItems(values, lengths, labels, lambda i: str(root / labels[i]), "text", "fortunes")
