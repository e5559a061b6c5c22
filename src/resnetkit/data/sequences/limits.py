"""Sizes a sequence file may declare or hold, checked before anything of that size is allocated.

A small file must never cost gigabytes: a header or a ragged file can ask for an array far larger
than itself (one series of 10^6 steps among 10^6 of one step pads to 10^12 values). Every reader
checks the item count, channels and length as it meets them, and the padded array against
``MAX_VALUES`` before it is made. The limits hold the whole UCR (longest: 2,844 steps) and UEA
archives (most channels: DuckDuckGeese, 1,345; longest: EigenWorms, 17,984 steps) but InsectWingbeat
(30,000 x 200 x 22 padded: 132 M values)."""

MAX_ITEMS = 1_000_000  # series or texts in one split
MAX_CHANNELS = 2048
MAX_LENGTH = 100_000  # steps of one series, or bytes of one text
MAX_VALUES = 1 << 26  # values of one split's padded (N, C, L) array: 256 MiB as float32
MAX_LINE_BYTES = 64 << 20  # one line of a .ts or CSV/TSV file
# One text CSV or fortune file, read whole: the csv module makes an object of every field, so a
# file of commas costs up to 8 bytes a byte.
MAX_TEXT_FILE_BYTES = 64 << 20
DEFLATE_RATIO = 1032  # deflate's ceiling: a compressed .npz member inflates at most this much
