"""z-normalisation of each series, as the UCR archive does it.

Dau et al. (2019, "The UCR time series archive", sec. 2) and the published comparisons
(Bagnall et al. 2017; Fawaz et al. 2019) z-normalise every series on its own: per series and per
channel, mean 0 and standard deviation 1 over its own valid steps, so a classifier sees shape, not
offset or scale. The statistics never mix items, so train and test are normalised alike."""

from __future__ import annotations

import numpy as np

# A channel whose spread is below float32's resolution of its own magnitude is constant: it
# becomes zeros, not NaN (the rule is scale-free: 1e-20 * a signal is still that signal).
CONSTANT_SPREAD = 1e-6


def znormalize(values: np.ndarray, lengths: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``values`` (N, C, L) float32 z-normalised in place per series and channel over its first
    ``lengths[i]`` steps (population std, as aeon and the UCR archive compute it); a constant
    channel becomes zeros and the padding past each length stays zero."""
    steps = np.arange(values.shape[2])
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk]
        n = lengths[start : start + chunk].astype(np.float64)[:, None, None]
        valid = steps[None, None, :] < n
        x = np.where(valid, block, 0.0).astype(np.float64)
        mean = x.sum(axis=2, keepdims=True) / n
        centred = np.where(valid, x - mean, 0.0)
        std = np.sqrt((centred**2).sum(axis=2, keepdims=True) / n)
        constant = std <= CONSTANT_SPREAD * np.abs(x).max(axis=2, keepdims=True)
        block[...] = np.where(constant, 0.0, centred / np.where(constant, 1.0, std))
    return values
