"""The lines of a text file, each bounded in size and decoded as UTF-8 where it is met."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import DatasetError
from .errors import utf8_text
from .limits import MAX_LINE_BYTES


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, the line without its end) of ``path``; a line past
    ``MAX_LINE_BYTES``, bytes that are not UTF-8 (the error names the byte offset) or an empty
    file are errors naming the file. A UTF-8 byte-order mark is skipped."""
    try:
        file = path.open("rb")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
    with file:
        offset, number = 0, 0
        while True:
            raw = file.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise DatasetError(f"{path}, line {number}: longer than {MAX_LINE_BYTES:,} bytes, the limit for a line")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            yield number, utf8_text(raw, f"{path}, line {number}", offset).rstrip("\r\n")
            offset += len(raw)
        if number == 0:
            raise DatasetError(f"{path}: empty file")
