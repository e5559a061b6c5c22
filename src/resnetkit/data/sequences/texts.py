"""What every text reader does to one text: UTF-8 checked, a byte-order mark and the final line
end taken off, empty and over-long texts refused, the bytes kept as they are (no lowercasing, no
Unicode normalisation: the byte model sees what the file holds)."""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError
from .errors import utf8_text
from .items import check_length


def text_bytes(data: bytes, where: str, max_length: int | None, offset: int = 0) -> np.ndarray:
    """(1, L) uint8 of one text; ``offset`` is where ``data`` starts in its file (for messages)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, offset = data[3:], offset + 3
    utf8_text(data, where, offset)
    data = data.rstrip(b"\r\n")
    if not data.strip():
        raise DatasetError(f"{where}: empty text")
    check_length(len(data), max_length, where, unit="bytes")
    return np.frombuffer(data, dtype=np.uint8)[None, :]
