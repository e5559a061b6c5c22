"""People's own texts in one CSV: a header row naming the columns ``text`` and ``label`` (in
either order, any case, nothing else), then one text a row (quoted as the csv module writes it:
a text may hold commas, quotes and line breaks)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .errors import short, utf8_text
from .items import ReadItems, check_count, pad
from .limits import MAX_TEXT_FILE_BYTES
from .texts import text_bytes

_HEADER_BYTES = 4096


def _columns(first_line: str) -> list[str]:
    return [name.strip().lower() for name in next(csv.reader([first_line]), [])]


def is_text_csv(path: Path) -> bool:
    """Whether ``path`` (a ``.csv``) starts with a header naming the columns ``text`` and
    ``label``: a text CSV (other columns are then an error), not UCR-style series."""
    try:
        with path.open("rb") as file:
            head = file.read(_HEADER_BYTES).split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf")
    except OSError:
        return False
    try:
        return {"label", "text"} <= set(_columns(head.decode("utf-8", "replace")))
    except csv.Error:
        return False  # not a CSV header: read as series, whose reader says what is wrong


def read_text_csv(path: str | Path, max_length: int | None = None) -> ReadItems:
    """The texts (UTF-8 bytes) and labels of a ``text,label`` CSV."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_FILE_BYTES:
            raise DatasetError(f"{path}: {size:,} bytes, past the limit of {MAX_TEXT_FILE_BYTES:,} for a text CSV")
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
    if not data.strip():
        raise DatasetError(f"{path}: empty file")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    rows = csv.reader(io.StringIO(utf8_text(data[bom:], str(path), bom), newline=""))
    arrays: list[np.ndarray] = []
    labels: list[str] = []
    line_of: list[int] = []
    try:
        header = [name.strip().lower() for name in next(rows)]
        if sorted(header) != ["label", "text"]:
            raise DatasetError(
                f"{path}, line 1: the header must name the columns text and label, got {short(','.join(header))!r}"
            )
        text_at, label_at = header.index("text"), header.index("label")
        start = rows.line_num + 1
        for row in rows:
            where = f"{path}, line {start}"
            if not row:
                start = rows.line_num + 1
                continue
            if len(row) != 2:
                raise DatasetError(f"{where}: {len(row)} fields, expected 2 (text, label; quote a text with commas)")
            label = row[label_at].strip()
            if not label:
                raise DatasetError(f"{where}: empty label")
            arrays.append(text_bytes(row[text_at].encode("utf-8"), where, max_length))
            labels.append(label)
            line_of.append(start)
            check_count(len(arrays), str(path))
            start = rows.line_num + 1
    except csv.Error as e:
        raise DatasetError(f"{path}, line {rows.line_num}: not readable CSV ({e})") from None
    except StopIteration:
        raise DatasetError(f"{path}: empty file") from None
    if not arrays:
        raise DatasetError(f"{path}: a header and no texts")
    values, lengths = pad(arrays, np.uint8, str(path))
    return ReadItems(values, lengths, labels, lambda i: f"{path}, line {line_of[i]}", "text", str(path))
