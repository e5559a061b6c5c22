"""Series and texts to predict: the files and strings a user hands to ``predict`` or a server,
read by the readers of training data with the same checks and prepared the same way (series
z-normalised per series and channel, texts as UTF-8 bytes), labels optional and ignored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .arrays import read_npz
from .delimited import read_delimited
from .items import ReadItems, check_count, check_length, pad
from .normalize import znormalize
from .text_csv import is_text_csv, read_text_csv
from .texts import text_bytes
from .ts_format import read_ts

SERIES_INPUTS = (".ts", ".npz", ".tsv", ".csv")
TEXT_INPUTS = (".txt", ".csv")


@dataclass(frozen=True)
class SequenceInputs:
    """Items to predict: ``values`` and ``lengths`` as in ``SequenceSplit``, and what they were."""

    values: np.ndarray
    lengths: np.ndarray
    kind: str
    source: str

    def __len__(self) -> int:
        return len(self.lengths)


def _prepared(items: ReadItems) -> SequenceInputs:
    values = items.values
    if items.kind == "series":
        values = znormalize(np.array(values, dtype=np.float32), items.lengths)
    return SequenceInputs(values, items.lengths, items.kind, items.source)


def read_series_inputs(path: str | Path, max_length: int | None = None) -> SequenceInputs:
    """The series of a ``.ts`` (``@classLabel false`` allowed), an ``.npz`` (``y`` optional) or a
    UCR-style ``.tsv``/``.csv`` (its first field, the label, is read and ignored)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".ts":
        return _prepared(read_ts(path, max_length, labelled=False))
    if suffix == ".npz":
        return _prepared(read_npz(path, max_length, labelled=False))
    if suffix in (".tsv", ".csv"):
        return _prepared(read_delimited(path, max_length))
    raise DatasetError(f"{path}: not a series file (expected {', '.join(SERIES_INPUTS)})")


def read_text_inputs(path: str | Path, max_length: int | None = None) -> SequenceInputs:
    """One text from a ``.txt`` file (its whole content), or the texts of a ``text,label`` CSV."""
    path = Path(path)
    if path.suffix.lower() == ".csv" and is_text_csv(path):
        return _prepared(read_text_csv(path, max_length))
    if path.suffix.lower() != ".txt":
        raise DatasetError(f"{path}: not a text file (expected a .txt file or a CSV with the header text,label)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
    values, lengths = pad([text_bytes(data, str(path), max_length)], np.uint8, str(path))
    return SequenceInputs(values, lengths, "text", str(path))


def text_inputs(texts: Sequence[str | bytes], source: str = "text", max_length: int | None = None) -> SequenceInputs:
    """Strings (or UTF-8 bytes) as a batch of texts; ``source`` names them in messages ("the
    request body", a file)."""
    check_count(len(texts), source)
    arrays = [
        text_bytes(text.encode("utf-8") if isinstance(text, str) else text, f"{source}, text {i + 1}", max_length)
        for i, text in enumerate(texts)
    ]
    values, lengths = pad(arrays, np.uint8, source)
    return SequenceInputs(values, lengths, "text", source)


def series_inputs(
    series: Sequence[Sequence[float]] | Sequence[Sequence[Sequence[float]]] | np.ndarray,
    source: str = "series",
    max_length: int | None = None,
) -> SequenceInputs:
    """Series given as numbers (one (L,) or (C, L) list or array per item, lengths free) as a
    z-normalised batch; NaN and infinite values are refused, as in files."""
    check_count(len(series), source)
    arrays: list[np.ndarray] = []
    for i, item in enumerate(series):
        where = f"{source}, series {i + 1}"
        try:
            array = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{where}: not numbers ({e})") from None
        array = array[None, :] if array.ndim == 1 else array
        if array.ndim != 2 or array.shape[1] < 1:
            raise DatasetError(f"{where}: expected (L,) or (C, L) numbers, got shape {array.shape}")
        if arrays and array.shape[0] != arrays[0].shape[0]:
            raise DatasetError(f"{where}: {array.shape[0]} channels, but series 1 has {arrays[0].shape[0]}")
        check_length(array.shape[1], max_length, where)
        single = array.astype(np.float32)
        if not (np.isfinite(array).all() and np.isfinite(single).all()):
            raise DatasetError(f"{where}: NaN, infinite or past float32's range (refused, not imputed)")
        arrays.append(single)
    values, lengths = pad(arrays, np.float32, source)
    return SequenceInputs(znormalize(values, lengths), lengths, "series", source)
