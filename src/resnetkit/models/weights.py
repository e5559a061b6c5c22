"""Reading, writing and fitting weights. Files are never unpickled into code: ``.safetensors``
via safetensors, ``.pth``/``.pt``/``.bin`` via ``torch.load(weights_only=True)``."""

from __future__ import annotations

import gc
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "module", "ema")
_PREFIXES = ("module.", "_orig_mod.")


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit the model."""


class WeightsMismatch(WeightsError):
    """Weights whose keys or shapes do not fit the model: ``problems`` counts them in a few
    words, ``guess`` names the registered models the tensors match best."""

    def __init__(self, message: str, problems: str, guess: list[str]):
        super().__init__(message)
        self.problems, self.guess = problems, guess


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a weights file or checkpoint, with DataParallel/DDP ``module.`` and
    ``torch.compile`` ``_orig_mod.`` prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        return clean_state_dict(read_safetensors(path), source=str(path))
    return clean_state_dict(torch_load(path), source=str(path))


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # the Rust reader's SafetensorError, or an OSError: one line that names the file
        raise WeightsError(f"{path}: not a safetensors file, or a damaged one ({first_line(e)})") from None


def torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors, numbers and strings only, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            # PyTorch's own text advises weights_only=False: the opposite of what to do with a
            # file refused as unsafe, so it is not passed on.
            raise WeightsError(
                f"{path}: this file holds Python objects resnetkit will not load; only tensors are read"
            ) from None
        raise WeightsError(f"{path}: not a PyTorch weights file, or a damaged one") from None
    except Exception as e:  # truncated zip, random bytes, empty file
        raise WeightsError(f"{path}: not a PyTorch weights file, or a damaged one ({first_line(e)})") from None


def first_line(error: BaseException) -> str:
    """The head of a library's error text, for a one-line message (the rest is its advice)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def clean_state_dict(obj: Mapping, source: str = "state_dict") -> dict[str, torch.Tensor]:
    for key in _WRAPPER_KEYS:  # a training checkpoint: take its model weights
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{source}: not a state_dict (expected a mapping of names to tensors)")
    out = {}
    for k, v in obj.items():
        for p in _PREFIXES:
            while k.startswith(p):
                k = k[len(p) :]
        out[k] = v
    return out


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Fit a first-conv weight trained on 3 channels to ``in_chans`` inputs (timm's rule): sum
    the RGB filters for 1 channel, else tile them and rescale so activations keep their size."""
    src = weight.shape[1]
    if src == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // src)
    return weight.repeat(1, reps, *(1,) * (weight.ndim - 2))[:, :in_chans] * (src / in_chans)  # 2-D or 1-D


def fit_state_dict(
    model: nn.Module, sd: dict[str, torch.Tensor], source: str = "weights", new_head: bool = False
) -> tuple[dict, list[str]]:
    """Adapt ``sd`` to ``model``: the first conv to the model's input channels, and a head of
    another size (any head, with ``new_head``) left out, returned in the second value, so the
    model keeps its fresh head."""
    own = model.state_dict()
    first = f"{getattr(model, 'first_conv', 'conv1')}.weight"
    if first in sd and first in own and sd[first].shape[1] != own[first].shape[1]:
        log.info("%s: adapting %s from %d to %d input channels", source, first, sd[first].shape[1], own[first].shape[1])
        sd = {**sd, first: adapt_input_conv(sd[first], own[first].shape[1])}
    # BatchNorm's step counter is bookkeeping: torchvision's detection checkpoints (frozen BN)
    # have none, a frozen-BN model keeps none. Neither way is a mismatch.
    counters = {k for k in (*sd, *own) if k.endswith("num_batches_tracked")}
    sd = {k: v for k, v in sd.items() if k not in counters or k in own}
    sd |= {k: own[k] for k in counters if k in own and k not in sd and _sibling(k, "running_mean") in sd}
    skipped = []
    for k in _head_keys(model):
        if k in sd and (new_head or k not in own or own[k].shape != sd[k].shape):
            skipped.append(k)
    if skipped:
        sd = {k: v for k, v in sd.items() if k not in skipped}
    return sd, skipped


def check_values(sd: Mapping[str, torch.Tensor], source: str = "state_dict") -> None:
    """Weights a model can be run with: every floating value finite and every BatchNorm running
    variance non-negative. A damaged file or a diverged run's weights would otherwise predict
    ``nan`` without a word."""
    for key, value in sd.items():
        if not value.is_floating_point():
            continue
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise WeightsError(f"{source}: {key} holds {bad} NaN or infinite value(s); the weights are damaged")
        if key.endswith("running_var") and bool((value < 0).any()):
            raise WeightsError(f"{source}: {key} holds negative variances; the weights are damaged")


def load_weights(
    model: nn.Module,
    source: str | os.PathLike | Mapping,
    strict: bool = True,
    new_head: bool = False,
    name: str | None = None,
) -> nn.Module:
    """Load a file or state_dict into ``model``; see ``fit_state_dict`` for what is adapted.
    ``new_head`` leaves the model's head as it is (freshly initialised) whatever the file holds;
    ``name`` is what errors call a state_dict (its file).

    Weights with non-finite values or negative BatchNorm variances are refused (``check_values``);
    anything else that does not fit raises one ``WeightsError`` that lists missing keys,
    unexpected keys and shape mismatches, and which registered models the file matches."""
    name = name or (str(source) if not isinstance(source, Mapping) else "state_dict")
    sd = read_state_dict(source) if not isinstance(source, Mapping) else clean_state_dict(source)
    check_values(sd, name)
    raw = sd
    sd, skipped = fit_state_dict(model, sd, name, new_head)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not (skipped and k in _head_keys(model))]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sd
        if k in own and sd[k].shape != own[k].shape
    ]
    if shapes or (strict and (missing or unexpected)):
        guess = guess_architecture(raw)
        counts = [(missing, "missing keys"), (unexpected, "unexpected keys"), (shapes, "shape mismatches")]
        problems = ", ".join(f"{len(items)} {what}" for items, what in counts if items)
        raise WeightsMismatch(_mismatch_message(name, missing, unexpected, shapes, guess), problems, guess)
    model.load_state_dict(sd, strict=False)
    if skipped and getattr(model, "num_classes", 1) != 0:  # a headless backbone wants no head: nothing to say
        log.warning(
            "%s: classifier %s not loaded (%s); it stays freshly initialised",
            name,
            ", ".join(skipped),
            "a new head was asked for"
            if new_head
            else f"its size differs from the model's {getattr(model, 'num_classes', '?')} classes",
        )
    return model


def _sibling(key: str, name: str) -> str:
    return key.rpartition(".")[0] + "." + name


def _head_keys(model: nn.Module) -> list[str]:
    """The last layer of each head: what a new task or class count replaces. Dense models name
    theirs in ``head_names``; classifiers name one in ``classifier``."""
    heads = getattr(model, "head_names", None) or (getattr(model, "classifier", "fc"),)
    return [f"{head}.{p}" for head in heads for p in ("weight", "bias")]


def _mismatch_message(name, missing, unexpected, shapes, guess) -> str:
    def listing(title, items):
        more = f" ... and {len(items) - 10} more" if len(items) > 10 else ""
        return f"\n  {title} ({len(items)}): {', '.join(items[:10])}{more}" if items else ""

    hint = f"\n  the file looks like it was saved from: {', '.join(guess)}" if guess else ""
    return (
        f"{name} does not fit the model:"
        + listing("missing keys", missing)
        + listing("unexpected keys", unexpected)
        + listing("shape mismatches", shapes)
        + hint
    )


def guess_architecture(sd: Mapping[str, torch.Tensor], limit: int = 3) -> list[str]:
    """Registered models whose keys and shapes (head aside) match ``sd`` best, built on the meta
    device so no memory is spent."""
    from .registry import list_models, model_entrypoint

    def signature(d):
        return {(k, tuple(v.shape)) for k, v in d.items() if not k.startswith("fc.")}

    target = signature(sd)
    scored = []
    # Building every model makes tens of thousands of modules, none of them garbage: with the
    # collector on, its full passes over a large heap (late in a long-lived process) cost several
    # times the building itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for name in list_models():
            with torch.device("meta"):
                model = model_entrypoint(name)()
            own = signature(model.state_dict())
            score = len(own & target) / max(len(own | target), 1)
            if score > 0.5:
                scored.append((score, name))
    finally:
        if collecting:
            gc.enable()
    scored.sort(reverse=True)
    exact = [n for s, n in scored if s == 1.0]
    return exact or [f"{n} ({s:.0%} of keys match)" for s, n in scored[:limit]]
