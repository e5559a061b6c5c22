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


# What a series is normalised by (``data.normalize``): each series on its own (UCR practice, the
# default), the training split's per-channel mean and std (levels kept: where a channel's level
# carries the class, as JapaneseVowels' cepstral coefficients do), or nothing (the raw values,
# as dl-4-tsc feeds the multivariate MTS archive).
NORMALIZE = ("series", "dataset", "none")


def check_normalize(mode: str, where: str = "data.normalize") -> str:
    if mode not in NORMALIZE:
        raise ValueError(f"{where}: {mode!r}, expected one of {', '.join(NORMALIZE)}")
    return mode


def channel_stats(values: np.ndarray, lengths: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std over every valid step of every series of ``values``
    (N, C, L); a constant channel's std is 1, so it is centred and left unscaled."""
    valid = np.arange(values.shape[2])[None, :] < lengths[:, None]  # (N, L)
    steps = float(valid.sum())
    x = np.where(valid[:, None, :], values, 0.0).astype(np.float64)
    mean = x.sum(axis=(0, 2)) / steps
    var = (np.where(valid[:, None, :], x - mean[None, :, None], 0.0) ** 2).sum(axis=(0, 2)) / steps
    std = np.sqrt(var)
    scale = np.abs(mean) + std
    std = np.where(std <= CONSTANT_SPREAD * np.where(scale > 0, scale, 1.0), 1.0, std)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def standardize(values: np.ndarray, lengths: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``values`` (N, C, L) float32 as (x - mean) / std per channel, in place over each series'
    valid steps; the padding past each length stays zero."""
    if len(mean) != values.shape[1] or len(std) != values.shape[1]:
        raise ValueError(f"{len(mean)} means and {len(std)} stds for {values.shape[1]} channels")
    m = np.asarray(mean, dtype=np.float64)[None, :, None]
    s = np.asarray(std, dtype=np.float64)[None, :, None]
    valid = np.arange(values.shape[2])[None, None, :] < lengths[:, None, None]
    values[...] = np.where(valid, (values - m) / s, 0.0)
    return values


def normalized(
    values: np.ndarray,
    lengths: np.ndarray,
    mode: str,
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> np.ndarray:
    """``values`` (N, C, L) float32 normalised in place as ``mode`` says: per series, with
    ``stats`` (the training split's ``channel_stats``; required for "dataset"), or not at all."""
    check_normalize(mode)
    if mode == "series":
        return znormalize(values, lengths)
    if mode == "dataset":
        if stats is None:
            raise ValueError("data.normalize='dataset' needs the training split's mean and std")
        return standardize(values, lengths, *stats)
    return values
