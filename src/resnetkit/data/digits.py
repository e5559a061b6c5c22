"""scikit-learn's bundled 8x8 handwritten digits (1,797 images), with a fixed seeded split."""

from __future__ import annotations

import numpy as np
import torch

DIGITS_TEST_FRACTION = 0.2
DIGITS_SEED = 0


def load_digits_split(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 8, 8) uint8 scaled from 0..16 to 0..255 and labels (N,) int64.

    The split is stratified and fixed (seed 0, 20 % test) so every run sees the same test set.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise ImportError("the digits dataset needs scikit-learn: pip install scikit-learn") from e
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SEED, stratify=digits.target
    )
    x, y = (train_x, train_y) if split == "train" else (test_x, test_y)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
