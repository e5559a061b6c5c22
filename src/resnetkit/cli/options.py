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


def add_tta_shift(p: argparse.ArgumentParser) -> None:
    from ..artifacts.cards import MAX_TTA_SHIFT

    def pixels(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_TTA_SHIFT:
            raise argparse.ArgumentTypeError(f"{text!r}: pixels from 0 (off) to {MAX_TTA_SHIFT}")
        return value

    p.add_argument(
        "--tta-shift",
        type=pixels,
        metavar="PX",
        help="also average over each view moved PX pixels left and right (default: as the model's training evaluated)",
    )
