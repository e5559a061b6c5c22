"""UCR-style delimited series: one univariate series a row, the class label first.

``.tsv`` is tab-separated (as the UCR 2018 archive ships its ``NAME_TRAIN.tsv``), ``.csv``
comma-separated; no header row; blank lines are skipped. Rows may differ in length (unequal
lengths), and a run of NaN that ends a row is the UCR 2018 archive's padding of a shorter series,
read as its end; any other NaN, infinite or missing value is an error naming the file and line.
The UCR 2015 archive's comma-separated files have no extension: name them ``.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .items import ReadItems, check_count, check_length, check_padded, pad
from .lines import read_lines
from .numbers import parse_values


def read_delimited(path: str | Path, max_length: int | None = None) -> ReadItems:
    """The series and labels of a UCR-style ``.csv`` or ``.tsv`` file."""
    path = Path(path)
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    arrays: list[np.ndarray] = []
    labels: list[str] = []
    line_of: list[int] = []
    total = 0
    for number, text in read_lines(path):
        if not text.strip():
            continue
        where = f"{path}, line {number}"
        label, found, rest = text.partition(sep)
        label = label.strip()
        if not found or not rest.strip():
            raise DatasetError(f"{where}: a label and no values (UCR style: the label, then the series, one row each)")
        if not label:
            raise DatasetError(f"{where}: empty class label (the first field)")
        try:
            series = parse_values(rest, sep, where, nan_padding=True)
        except DatasetError as e:
            if arrays:
                raise
            raise DatasetError(f"{e} (UCR-style files have no header row; a text CSV's header is text,label)") from None
        check_length(len(series), max_length, where)
        total += len(series)
        check_count(len(arrays) + 1, str(path))
        check_padded(1, 1, total, str(path))
        arrays.append(series[None, :])
        labels.append(label)
        line_of.append(number)
    if not arrays:
        raise DatasetError(f"{path}: no series (blank lines only)")
    values, lengths = pad(arrays, np.float32, str(path))
    return ReadItems(values, lengths, labels, lambda i: f"{path}, line {line_of[i]}", "series", str(path))
