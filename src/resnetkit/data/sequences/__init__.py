"""Sequences: time series and texts for 1-D residual networks.

``load_sequences(spec, split)`` reads one split of UCR/UEA datasets bundled with aeon
(``ucr:GunPoint``), Debian's fortunes corpus (``fortunes``) or people's own files (``.ts``,
``.npz``, UCR-style ``.tsv``/``.csv``, a ``text,label`` CSV, folders of ``.txt`` per class) into a
``SequenceSplit``: values padded to the longest item, their lengths, class indices and names.
Every reader checks its input before training can start: one line naming the file and the
problem, sizes bounded by ``limits`` before anything is allocated. What is to be predicted is read
by the sequence task (``tasks.sequence``), which prepares it as the model's record says."""

from .items import ReadItems, class_order
from .limits import MAX_CHANNELS, MAX_ITEMS, MAX_LENGTH, MAX_VALUES
from .load import TEST_FRACTION, load_sequences
from .normalize import NORMALIZE, channel_stats, check_normalize, normalized, znormalize
from .record import SequenceSplit
from .specs import SERIES_EXTENSIONS, is_sequence_spec
from .ucr import ucr_names

__all__ = [
    "MAX_CHANNELS",
    "MAX_ITEMS",
    "MAX_LENGTH",
    "MAX_VALUES",
    "NORMALIZE",
    "SERIES_EXTENSIONS",
    "TEST_FRACTION",
    "ReadItems",
    "SequenceSplit",
    "channel_stats",
    "check_normalize",
    "class_order",
    "is_sequence_spec",
    "load_sequences",
    "normalized",
    "ucr_names",
    "znormalize",
]
