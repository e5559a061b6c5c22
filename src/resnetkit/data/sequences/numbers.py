"""Numbers of one series as written in a text file (``1.5,2,-3e-2``), read without a Python
object per value, and refused where they are not finite."""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError
from .errors import short


def parse_values(text: str, sep: str, where: str, nan_padding: bool = False) -> np.ndarray:
    """The float32 values of ``text`` separated by ``sep`` (spaces around them allowed).

    NaN, infinite, ``?`` and empty values are errors naming ``where`` and the value's position:
    missing values are refused, not imputed (fill or drop them before training). With
    ``nan_padding``, a run of NaN that ends the series is where it ends (the UCR 2018 archive
    pads its unequal-length series so) and is cut off; a NaN before a number is still refused."""
    try:
        values = np.fromstring(text, dtype=np.float64, sep=sep)  # C parser: no object per value
    except ValueError:
        values = None
    if values is None or (text.strip() and text.rstrip().endswith(sep.strip() or sep)):
        raise DatasetError(f"{where}: {_first_bad(text, sep)}")
    if values.size == 0:
        raise DatasetError(f"{where}: a series without values")
    finite = np.isfinite(values)
    if nan_padding and not finite[-1] and np.isnan(values[-1]):
        end = len(values) - int(np.argmax(~np.isnan(values[::-1]))) if not np.isnan(values).all() else 0
        if end == 0:
            raise DatasetError(f"{where}: a series of NaN only")
        values, finite = values[:end], finite[:end]
    if not finite.all():
        at = int(np.argmin(finite))
        raise DatasetError(
            f"{where}: value {at + 1} is {values[at]} (NaN and infinite values are refused, not imputed: "
            "fill or drop them first)"
        )
    single = values.astype(np.float32)
    if not np.isfinite(single).all():
        at = int(np.argmin(np.isfinite(single)))
        raise DatasetError(f"{where}: value {at + 1} ({values[at]:g}) is past float32's range")
    return single


def _first_bad(text: str, sep: str) -> str:
    """What is wrong with the first token of ``text`` that is not a number (only on the error path)."""
    start, index = 0, 1
    while True:
        end = text.find(sep, start)
        token = (text[start:] if end < 0 else text[start:end]).strip()
        try:
            float(token)
        except ValueError:
            if not token:
                return f"value {index} is empty"
            if token == "?":
                return f"value {index} is missing ('?'): missing values are refused, not imputed"
            return f"value {index} is not a number: {short(token)!r}"
        if end < 0:
            return "unreadable values"
        start, index = end + len(sep), index + 1
