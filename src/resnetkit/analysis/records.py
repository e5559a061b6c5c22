"""Analysis results as JSON: dataclasses, tensors and arrays become plain numbers and lists."""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts import atomic_write_text


def to_jsonable(obj: Any) -> Any:
    """Non-finite floats become null: JSON has no inf or NaN (a spread with a zero gradient is inf)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(result: Any, path: str | os.PathLike) -> Path:
    """Write any analysis result (or a dict of them, keyed by label) to ``path``."""
    return atomic_write_text(path, json.dumps(to_jsonable(result), indent=2) + "\n")
