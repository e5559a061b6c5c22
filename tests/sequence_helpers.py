"""A stand-in for ``resnetkit.data.sequences``' readers with their interface, serving small
synthetic splits as the readers' own ``SequenceSplit``, so the sequence task is tested through
every tool in seconds."""

from __future__ import annotations

import sys
import types

import numpy as np

from resnetkit.data.sequences.record import SequenceSplit  # the readers' record, served by the stand-in


def bumps(n: int, length: int, seed: int, channels: int = 1, ragged: bool = False) -> SequenceSplit:
    """Class 0 has a bump in the first quarter of the series, class 1 in the last: what decides
    the class is where the bump is (a class activation map should find it)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(length // 2, length + 1, n) if ragged else np.full(n, length)
    targets = np.arange(n) % 2
    values = np.zeros((n, channels, length), np.float32)
    for i, (n_i, y) in enumerate(zip(lengths, targets, strict=True)):
        t = np.arange(n_i)
        centre = n_i * (0.15 if y == 0 else 0.85)
        x = np.exp(-0.5 * ((t - centre) / 2.0) ** 2) + 0.05 * rng.standard_normal((channels, n_i))
        x = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
        values[i, :, :n_i] = x
    return SequenceSplit(values, lengths.astype(np.int64), targets.astype(np.int64), ("early", "late"), "series", "toy")


TEXTS = {
    "sea": ["the tide rolls in", "waves on the sand", "a ship at sea", "salt water and wind"],
    "sky": ["clouds drift by", "a bird in flight", "stars at night", "the sun is high"],
}


def texts(split: str) -> SequenceSplit:
    items = [(t + (" again" if split == "test" else ""), c) for c, ts in enumerate(TEXTS.values()) for t in ts]
    length = max(len(t.encode()) for t, _ in items)
    values = np.zeros((len(items), 1, length), np.uint8)
    for i, (t, _) in enumerate(items):
        data = t.encode()
        values[i, 0, : len(data)] = np.frombuffer(data, np.uint8)
    lengths = np.array([len(t.encode()) for t, _ in items], np.int64)
    return SequenceSplit(values, lengths, np.array([c for _, c in items], np.int64), tuple(TEXTS), "text", "toy")


def load_sequences(
    spec: str, split: str, *, seed: int = 0, max_length: int | None = None, root=None, normalize="series", stats=None
):
    if normalize != "series":  # the stand-in's series are z-normalised per series; the real readers do the rest
        raise NotImplementedError(f"the stand-in readers normalise per series, not {normalize!r}")
    n = 24 if split == "train" else 12
    offset = 0 if split == "train" else 100
    if spec == "toy:series":
        return bumps(n, 32, offset)
    if spec == "toy:ragged":
        return bumps(n, 32, offset + 1, channels=2, ragged=True)
    if spec == "toy:long":
        return bumps(n, 48, offset + 2)
    if spec == "toy:text":
        return texts(split)
    raise ValueError(f"unknown sequence spec {spec!r}")


def is_sequence_spec(spec: str) -> bool:
    return spec.startswith("toy:")


def install(monkeypatch) -> None:
    module = types.ModuleType("resnetkit.data.sequences")
    module.SequenceSplit = SequenceSplit  # type: ignore[attr-defined]
    module.load_sequences = load_sequences  # type: ignore[attr-defined]
    module.is_sequence_spec = is_sequence_spec  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "resnetkit.data.sequences", module)
