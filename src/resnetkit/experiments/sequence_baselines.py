"""The methods a practitioner picks instead of a deep net, run on the study's own splits.

- **MiniRocket** (Dempster et al., KDD 2021), aeon's ``MiniRocketClassifier`` (10,000 kernels,
  ridge classifier with built-in cross-validation): the CPU method of choice for time series. aeon's
  MiniRocket takes equal-length collections only, so unequal series (JapaneseVowels) go through
  aeon's ``Padder``: each series cut to its own length, then zero-padded at the end to the longest
  series of train and test (zero is the mean of a z-normalised series).
- **TF-IDF + logistic regression** (scikit-learn): the text baseline people try first. Character
  1-4-grams within word boundaries (``char_wb``), sublinear term frequency, terms in at least two
  texts; multinomial logistic regression, C=10, lbfgs.

Both read their data with ``load_sequences``, so they see the splits the ResNets see (the archive's
own train/test; the fortunes' seeded 20% test), and each is timed: fit plus prediction, wall
clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.sequences import SequenceSplit, load_sequences

MINIROCKET = {"n_kernels": 10_000, "max_dilations_per_kernel": 32}
MINIROCKET_QUICK = {"n_kernels": 84 * 6, "max_dilations_per_kernel": 8}  # tests: the fewest MiniRocket allows
TFIDF = {"analyzer": "char_wb", "ngram_range": (1, 4), "sublinear_tf": True, "min_df": 2}
TFIDF_QUICK = TFIDF | {"ngram_range": (1, 2)}
LOGREG = {"C": 10.0, "max_iter": 1000}


@dataclass(frozen=True)
class BaselineResult:
    accuracy: float
    seconds: float  # fit + predict, wall clock
    train_items: int
    test_items: int
    classes: int


def series_of(split: SequenceSplit) -> list[np.ndarray]:
    """Each series as a (C, length) array, its padding cut off."""
    return [values[:, :n] for values, n in zip(split.values, split.lengths, strict=True)]


def texts_of(split: SequenceSplit) -> list[str]:
    """Each text as a string (the readers checked that it is UTF-8)."""
    return [bytes(values[0, :n]).decode("utf-8") for values, n in zip(split.values, split.lengths, strict=True)]


def raw_series(spec: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """A bundled UCR/UEA split as aeon reads it, not normalised: (series, labels as strings)."""
    from aeon.datasets import load_classification

    from ..data.sequences.ucr import aeon_data_dir, ucr_name

    name = ucr_name(spec.removeprefix("ucr:"))
    x, y = load_classification(name, split=split, extract_path=str(aeon_data_dir()))
    return [np.asarray(s, dtype=np.float64) for s in x], np.asarray([str(v).lower() for v in y])


_warm = False


def warm_up() -> None:
    """Compile MiniRocket's numba kernels once, so the first timed run does not pay for them."""
    global _warm
    if _warm:
        return
    from aeon.classification.convolution_based import MiniRocketClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 2, 16)), np.array([0, 1] * 4)
    for data in (x, x[:, :1]):  # the multivariate and the univariate kernels
        MiniRocketClassifier(**MINIROCKET_QUICK, random_state=0).fit(data, y).predict(data)
    _warm = True


def minirocket(spec: str, seed: int, *, raw: bool = False, quick: bool = False) -> BaselineResult:
    """MiniRocket on ``spec``'s train split, scored on its test split. ``raw``: on the values as aeon
    reads them (a bundled dataset only), instead of the z-normalised series the ResNets see."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.transformations.collection.unequal_length import Padder

    warm_up()
    train, test = load_sequences(spec, "train", seed=seed), load_sequences(spec, "test", seed=seed)
    x_train, x_test = series_of(train), series_of(test)
    y_train, y_test = train.targets, test.targets
    if raw:
        x_train, labels_train = raw_series(spec, "train")
        x_test, labels_test = raw_series(spec, "test")
        index = {name: i for i, name in enumerate(train.classes)}  # the classes the normalised split has
        y_train = np.array([index[v] for v in labels_train])
        y_test = np.array([index[v] for v in labels_test])
    start = time.perf_counter()
    longest = max(s.shape[-1] for s in [*x_train, *x_test])
    pad = Padder(padded_length=longest, fill_value=0)
    settings = MINIROCKET_QUICK if quick else MINIROCKET
    model = MiniRocketClassifier(**settings, random_state=seed, n_jobs=1)
    model.fit(pad.fit_transform(x_train), y_train)
    accuracy = float(np.mean(model.predict(pad.transform(x_test)) == y_test))
    return BaselineResult(accuracy, time.perf_counter() - start, len(train), len(test), train.num_classes)


def tfidf_logreg(spec: str, seed: int, *, quick: bool = False) -> BaselineResult:
    """TF-IDF of character n-grams + logistic regression on ``spec``'s texts (its ``seed``'s split)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, test = load_sequences(spec, "train", seed=seed), load_sequences(spec, "test", seed=seed)
    start = time.perf_counter()
    model = make_pipeline(
        TfidfVectorizer(**(TFIDF_QUICK if quick else TFIDF)), LogisticRegression(**LOGREG, random_state=seed)
    )
    model.fit(texts_of(train), train.targets)
    accuracy = float(np.mean(model.predict(texts_of(test)) == test.targets))
    return BaselineResult(accuracy, time.perf_counter() - start, len(train), len(test), train.num_classes)


def settings_of(method: str, quick: bool) -> str:
    """The settings a baseline row was made with, as its row records them (a row made with others
    is not reused)."""
    values: dict[str, Any]
    if method.startswith("minirocket"):
        values = MINIROCKET_QUICK if quick else MINIROCKET
    else:
        values = (TFIDF_QUICK if quick else TFIDF) | LOGREG
    return ";".join(f"{k}={str(v).replace(' ', '')}" for k, v in values.items())
