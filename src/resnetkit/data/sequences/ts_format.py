"""The ``.ts`` format of sktime and aeon (the UEA/UCR archive's own), read with its header
checked against its data.

A header of ``@tag value`` lines (``@problemName``, ``@timeStamps``, ``@missing``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true A B``,
``@targetLabel``; lines starting with ``#`` or ``%`` are comments) ends with ``@data``; then one
series a line, channels separated by ``:``, values by ``,``, the class label last. aeon's
``load_from_ts_file`` checks none of the header against the data (and lowercases every label),
so this reader is resnetkit's own, line by line and bounded:
a tag it does not know, a channel count other than ``@dimensions`` (or 1 when ``@univariate``),
a length other than ``@seriesLength`` when ``@equalLength`` is true, a label not listed in
``@classLabel``, a NaN or ``?`` (missing values are refused, not imputed), channels of one series
of different lengths: each an error naming the file and line. Time-stamped files
(``@timeStamps true``) and regression files (``@targetLabel true``) are refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .errors import short
from .items import ReadItems, check_count, check_length, check_padded, pad
from .limits import MAX_CHANNELS
from .lines import read_lines
from .numbers import parse_values

_BOOLEAN_TAGS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_COUNT_TAGS = ("dimension", "dimensions", "serieslength")


@dataclass
class TsHeader:
    tags: dict[str, object] = field(default_factory=dict)
    class_values: tuple[str, ...] | None = None  # None: @classLabel false or absent

    def flag(self, name: str, default: bool) -> bool:
        value = self.tags.get(name, default)
        return bool(value)

    @property
    def channels(self) -> int | None:
        declared = self.tags.get("dimensions", self.tags.get("dimension"))
        if declared is None and self.flag("univariate", False):
            return 1
        return declared if isinstance(declared, int) else None


def _header_line(header: TsHeader, text: str, where: str) -> None:
    tag, _, rest = text.strip().partition(" ")
    key, value = tag[1:].lower(), rest.strip()
    if key in header.tags or (key == "classlabel" and header.class_values is not None):
        raise DatasetError(f"{where}: {tag} is given twice")
    if key == "problemname":
        header.tags[key] = value
    elif key in _BOOLEAN_TAGS:
        if value.lower() not in ("true", "false"):
            raise DatasetError(f"{where}: {tag} takes true or false, got {short(value)!r}")
        header.tags[key] = value.lower() == "true"
    elif key in _COUNT_TAGS:
        if not value.isdecimal() or len(value) > 9 or int(value) < 1:
            raise DatasetError(f"{where}: {tag} takes a positive whole number, got {short(value)!r}")
        header.tags[key] = int(value)
    elif key == "classlabel":
        first, *names = value.split() or [""]
        if first.lower() == "true":
            if not names:
                raise DatasetError(f"{where}: @classLabel true lists no class")
            header.class_values = tuple(names)
        elif first.lower() != "false" or names:
            raise DatasetError(f"{where}: @classLabel takes true and the class labels, or false")
        header.tags[key] = first.lower() == "true"
    else:
        raise DatasetError(f"{where}: unknown header tag {short(tag)!r}")


def _check_header(header: TsHeader, path: Path, labelled: bool) -> None:
    if header.flag("timestamps", False):
        raise DatasetError(f"{path}: time-stamped .ts files (@timeStamps true) are not read; write the values only")
    if header.flag("targetlabel", False):
        raise DatasetError(f"{path}: a regression file (@targetLabel true); resnetkit classifies (@classLabel true)")
    if labelled and header.class_values is None:
        raise DatasetError(f"{path}: no class labels (@classLabel true with the labels is needed to train)")
    declared = header.channels
    if declared is not None and declared > MAX_CHANNELS:
        raise DatasetError(f"{path}: @dimensions {declared:,} is past the limit of {MAX_CHANNELS:,} channels")
    if header.flag("univariate", False) and declared not in (None, 1):
        raise DatasetError(f"{path}: @univariate true contradicts @dimensions {declared}")


def read_ts(path: str | Path, max_length: int | None = None, labelled: bool = True) -> ReadItems:
    """The series and labels of a ``.ts`` file (see the module's docstring for what is checked)."""
    path = Path(path)
    header = TsHeader()
    arrays: list[np.ndarray] = []
    labels: list[str] = []
    line_of: list[int] = []
    in_data, channels, total = False, None, 0
    for number, text in read_lines(path):
        where = f"{path}, line {number}"
        stripped = text.strip()
        if not stripped or stripped.startswith(("#", "%")):  # comments, as aeon and ARFF write them
            continue
        if not in_data:
            if not stripped.startswith("@"):
                raise DatasetError(f"{where}: data before @data (the header's last line)")
            if stripped.lower() == "@data":
                _check_header(header, path, labelled)
                in_data, channels = True, header.channels
            else:
                _header_line(header, stripped, where)
            continue
        has_label = header.class_values is not None
        count = stripped.count(":") + 1 - has_label  # counted before the line is split into objects
        if count > MAX_CHANNELS:
            raise DatasetError(f"{where}: {count:,} channels, past the limit of {MAX_CHANNELS:,}")
        if count < 1:
            raise DatasetError(f"{where}: no values before the class label")
        fields = stripped.split(":")
        if channels is not None and count != channels:
            said = "earlier lines have"
            if "dimensions" in header.tags or "dimension" in header.tags:
                said = "@dimensions says"
            elif header.flag("univariate", False):
                said = "@univariate true means"
            raise DatasetError(f"{where}: {count} channels, but {said} {channels}")
        channels = count
        if has_label:
            label = fields[-1].strip()
            if label not in (header.class_values or ()):
                raise DatasetError(
                    f"{where}: class label {short(label)!r} is not listed in @classLabel "
                    f"({short(' '.join(header.class_values or ()), 200)})"
                )
            labels.append(label)
        series = [parse_values(fields[c], ",", f"{where}, channel {c + 1}") for c in range(count)]
        length = len(series[0])
        if any(len(s) != length for s in series):
            raise DatasetError(
                f"{where}: its channels have different lengths ({', '.join(str(len(s)) for s in series)})"
            )
        check_length(length, max_length, where)
        declared = header.tags.get("serieslength")
        if header.flag("equallength", False):
            expected = declared if isinstance(declared, int) else (arrays[0].shape[1] if arrays else length)
            if length != expected:
                said = "@seriesLength" if isinstance(declared, int) else "the first series (@equalLength true)"
                raise DatasetError(f"{where}: {length:,} steps, but {said} says {expected:,}")
        total += count * length
        check_count(len(arrays) + 1, str(path))
        check_padded(1, 1, total, str(path))
        arrays.append(np.stack(series))
        line_of.append(number)
    if not in_data:
        raise DatasetError(f"{path}: no @data line (a .ts file's header ends with @data)")
    if not arrays:
        raise DatasetError(f"{path}: no series after @data")
    values, lengths = pad(arrays, np.float32, str(path))
    return ReadItems(values, lengths, labels, lambda i: f"{path}, line {line_of[i]}", "series", str(path))
