"""The one-line messages every sequence reader shares."""

from __future__ import annotations

from ..errors import DatasetError


def short(text: str, limit: int = 40) -> str:
    """``text`` as it goes into a one-line message: one line, at most ``limit`` characters."""
    text = text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
    return text.replace("\n", "\\n").replace("\r", "\\r")


def utf8_text(data: bytes, where: str, offset: int = 0) -> str:
    """``data`` decoded as UTF-8, or an error naming ``where`` and the byte offset (``offset`` is
    where ``data`` starts in its file) of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"{where}: not UTF-8 text: byte 0x{data[e.start]:02x} at byte offset {offset + e.start} "
            "(save the file as UTF-8)"
        ) from None
