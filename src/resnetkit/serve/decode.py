"""Request bodies to model inputs: where hostile input is met, apart from the batched model call
where the speed is (LitServe's decode_request/predict split). Every refusal is an ``HTTPError``
whose message names the part and the problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data import DatasetError, decode_image
from ..tasks import Prepared, Task


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Upload:
    name: str
    data: bytes


def decode(upload: Upload, task: Task, model: Any, max_pixels: int) -> Prepared:
    """One uploaded image, read as ``predict`` reads files (every Pillow mode, first frame, EXIF
    orientation), at most ``max_pixels``, and prepared by the model's task as its record says."""
    mode, draft = task.reading(model)
    try:
        image = decode_image(upload.data, upload.name, mode, draft, max_pixels)
    except DatasetError as e:
        raise HTTPError(400, str(e)) from None
    return task.prepare(image, upload.name, model)
