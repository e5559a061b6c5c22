"""Flags that several commands share, spelled and explained once."""

from __future__ import annotations

import argparse


def add_max_image_pixels(p: argparse.ArgumentParser) -> None:
    """``main`` applies it (``resnetkit.data.set_max_image_pixels``) before the command runs."""
    p.add_argument(
        "--max-image-pixels",
        type=int,
        metavar="N",
        help="refuse images larger than N pixels (default: Pillow's 89M, a guard against decompression bombs)",
    )
