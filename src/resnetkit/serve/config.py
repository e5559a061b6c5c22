"""What ``resnetkit serve`` can be told: one small dataclass, checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 32  # images run together by the dynamic batcher
    max_wait_ms: float = 5.0  # how long the first image of a batch waits for company
    max_upload_mb: float = 10.0  # a request body over this is refused (413) before it is read whole
    max_images: int = 32  # images in one request
    max_image_pixels: int = 40_000_000  # width x height of one image: the decompression-bomb guard
    top_k: int = 5
    body_timeout_s: float = 10.0  # a client that sends no body bytes for this long is cut off (408)
    body_deadline_s: float = 60.0  # and one whose body takes longer than this in all
    precision: str = "auto"  # a word of resnetkit.runtime.INFER_PRECISIONS

    def __post_init__(self) -> None:
        checks = {
            "--max-batch": self.max_batch >= 1,
            "--max-wait-ms": self.max_wait_ms >= 0,
            "--max-upload-mb": self.max_upload_mb > 0,
            "--max-images": self.max_images >= 1,
            "--max-image-pixels": self.max_image_pixels >= 1,
            "--top-k": self.top_k >= 1,
            "--body-timeout": self.body_timeout_s > 0,
            "--body-deadline": self.body_deadline_s >= self.body_timeout_s,
        }
        for flag, ok in checks.items():
            if not ok:
                raise ValueError(f"{flag}: out of range ({self})")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
