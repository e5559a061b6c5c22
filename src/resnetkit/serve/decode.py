"""Request bodies to model inputs: where hostile input is met, apart from the batched model call
where the speed is (LitServe's decode_request/predict split). Every refusal is an ``HTTPError``
whose message names the part and the problem."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import DatasetError, decode_image
from ..infer.preprocess import InputSpec, fit, normalize


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Upload:
    name: str
    data: bytes


@dataclass
class Decoded:
    name: str
    fitted: torch.Tensor  # uint8 (C, H, W) at the model's input size: what the overlay is drawn on
    input: torch.Tensor  # the normalized float input


def decode(upload: Upload, spec: InputSpec, max_pixels: int) -> Decoded:
    """One uploaded image, read as ``predict`` reads files (every Pillow mode, first frame,
    EXIF orientation), at most ``max_pixels``, fitted and normalized for the model."""
    mode = "L" if spec.in_chans == 1 else "RGB"
    try:
        image = decode_image(upload.data, upload.name, mode, max(spec.image_size), max_pixels)
    except DatasetError as e:
        raise HTTPError(400, str(e)) from None
    fitted = fit(image, spec)
    return Decoded(upload.name, fitted, normalize(fitted, spec))
