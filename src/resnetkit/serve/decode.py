"""Request bodies to model inputs: where hostile input is met, apart from the batched model call
where the speed is (LitServe's decode_request/predict split). Every refusal is an ``HTTPError``
whose message names the part and the problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data import DatasetError
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
    """One uploaded body made ready by the model's task (``Task.decode``: an image read as
    ``predict`` reads files, at most ``max_pixels``; a series or a text as JSON)."""
    try:
        return task.decode(upload.data, upload.name, model, max_pixels)
    except (DatasetError, ValueError) as e:
        raise HTTPError(400, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
