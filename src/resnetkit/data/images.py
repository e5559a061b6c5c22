"""Image files to uint8 tensors, right for every mode Pillow opens.

Pillow's own ``convert("L")``/``convert("RGB")`` clips wider samples instead of scaling them (a
16-bit 0-65535 gradient arrives nearly all white) and drops alpha. Here each mode is brought to
8 bits by its own range first: 16-bit samples are divided by 257 (65535 -> 255), 32-bit integer
samples (``I``, which 16-bit TIFFs and PNGs also decode to) are read as 16-bit, float samples
(``F``) as [0, 1] when they lie there and as [0, 255] otherwise; transparent pixels are
composited onto black (premultiplied alpha: no signal where the image has none), and animated
images give their first frame. EXIF orientation is applied, as a camera's viewer shows the photo."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DatasetError

# Pillow's default (about 89 megapixels): past it an image is refused as a possible
# decompression bomb. Raised by --max-image-pixels.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_max_pixels = DEFAULT_MAX_PIXELS

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def set_max_image_pixels(pixels: int | None) -> None:
    """The largest image (width x height) any reader accepts; None restores Pillow's default."""
    global _max_pixels
    if pixels is not None and pixels < 1:
        raise ValueError(f"--max-image-pixels {pixels}: must be at least 1")
    _max_pixels = DEFAULT_MAX_PIXELS if pixels is None else int(pixels)


def max_image_pixels() -> int:
    return _max_pixels


def read_image(path: str | os.PathLike[str], mode: str = "RGB", draft_size: int | None = None) -> torch.Tensor:
    """An image file as uint8 (C, H, W) in ``mode`` ("RGB" or "L"); ``draft_size`` lets JPEG
    decode at a reduced scale that still covers that many pixels. Any failure is one
    ``DatasetError`` naming the file."""
    return _decoded(Path(path), Path(path), mode, draft_size)


def image_mode(path: str | os.PathLike[str]) -> str:
    """The mode Pillow opens ``path`` in, read from its header within the pixel limit; a failure is
    ``read_image``'s one-line ``DatasetError``."""
    with _opened(Path(path)) as img:
        return img.mode


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """A one-channel image of class indices (8-bit ``L`` or ``P``, 16-bit ``I;16``, 32-bit ``I``)
    as its values, unscaled, (H, W) in the image's own integer type; the pixel limit and one-line
    errors of ``read_image``."""
    path = Path(path)
    with _opened(path) as img:
        if img.mode not in ("L", "P", "I") and not img.mode.startswith("I;16"):
            raise DatasetError(f"{path}: a mask must be a one-channel PNG of class indices, not {img.mode}")
        values = np.array(img)
    return values.astype(values.dtype.newbyteorder("="))


# What an upload may be: the raster formats people send. Pillow also opens EPS (through
# Ghostscript, on PostScript a stranger wrote) and a few dozen rarer formats: not from the network.
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO")


def decode_image(
    data: bytes, name: str, mode: str = "RGB", draft_size: int | None = None, max_pixels: int | None = None
) -> torch.Tensor:
    """``read_image`` for an image's bytes (an upload): the same modes and one-line
    ``DatasetError``, which names ``name``; only ``UPLOAD_FORMATS``, and at most ``max_pixels``
    (default: the limit every reader shares)."""
    if not data:
        raise DatasetError(f"{name}: empty (zero bytes)")
    return _decoded(io.BytesIO(data), Path(name), mode, draft_size, max_pixels, UPLOAD_FORMATS)


def _decoded(
    source: Path | BinaryIO,
    name: Path,
    mode: str,
    draft_size: int | None,
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
) -> torch.Tensor:
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    with _opened(source, name, max_pixels, formats) as img:
        if draft_size and img.format == "JPEG":
            img.draft(mode, (draft_size, draft_size))
        array = to_uint8(img, mode)
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


@contextmanager
def _opened(
    source: Path | BinaryIO,
    path: Path | None = None,
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
) -> Iterator[Image.Image]:
    """The image at ``source`` (a path or a binary file) with its size checked against the pixel
    limit (``max_pixels``, else the shared one); any failure, while opening or while the caller
    decodes it, is one ``DatasetError`` that names the file (``path``, by default ``source``)."""
    if path is None:
        assert isinstance(source, Path)
        path = source
    limit = max_pixels or _max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as img:
                if img.width * img.height > limit:
                    raise DatasetError(_too_large(path, img, limit))
                yield img
    except DatasetError:
        raise
    except Image.DecompressionBombError:
        raise DatasetError(_too_large(path, None, limit)) from None
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        reason = "not an image Pillow can read" if isinstance(e, UnidentifiedImageError) else str(e) or type(e).__name__
        raise DatasetError(f"{path}: unreadable image ({reason})") from None


def _too_large(path: Path, img: Image.Image | None, limit: int) -> str:
    size = f" is {img.width}x{img.height} ({img.width * img.height:,} pixels)" if img is not None else " is too large"
    return (
        f"{path}{size}, over the limit of {limit:,} pixels that guards against decompression bombs; "
        "raise it with --max-image-pixels if the image is trusted"
    )


def to_uint8(img: Image.Image, mode: str = "RGB") -> np.ndarray:
    """A Pillow image (first frame, upright) as a uint8 array (H, W) for "L" or (H, W, 3) for "RGB"."""
    img.seek(0)
    img = ImageOps.exif_transpose(img) or img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode.startswith("I") or img.mode == "F":
        gray = Image.fromarray(_scale_wide(np.asarray(img)))
        return np.asarray(gray if mode == "L" else gray.convert("RGB"), dtype=np.uint8)
    if img.mode in _ALPHA_MODES:
        img = _onto_black(img)
    return np.asarray(img.convert(mode), dtype=np.uint8)


def _scale_wide(values: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit integer and float samples on the 0-255 scale, rounded."""
    if values.dtype.kind == "f":
        v = values.astype(np.float64)
        v = np.nan_to_num(v, nan=0.0, posinf=255.0, neginf=0.0)
        scaled = v * 255.0 if v.size and v.min() >= 0.0 and v.max() <= 1.0 else v
    else:
        # 16-bit sources (PNG, TIFF) decode to I;16* or to I; full range 65535 maps to 255.
        scaled = values.astype(np.float64) / 257.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _onto_black(img: Image.Image) -> Image.Image:
    """Composite over black: colour times alpha, as premultiplied alpha stores it."""
    rgba = img.convert("RGBA" if img.mode != "LA" and img.mode != "La" else "LA")
    array = np.asarray(rgba, dtype=np.float64)
    colour, alpha = array[..., :-1], array[..., -1:] / 255.0
    out = np.rint(colour * alpha).astype(np.uint8)
    return Image.fromarray(out[..., 0] if out.shape[-1] == 1 else out)


def check_image(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be trained on (None: it can), found fast: the header and pixel limit,
    then a JPEG decoded at 1/8 scale (its draft mode) or another format's data checked whole by
    Pillow's ``verify`` (chunk checksums, truncation). Decoding in full is what training does."""
    path = Path(path)
    try:
        with _opened(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
            else:
                img.verify()
    except DatasetError as e:
        return str(e).removeprefix(str(path)).removeprefix(":").strip()
    return None


def find_bad_images(paths: Sequence[str | os.PathLike[str]], workers: int = 4) -> list[tuple[Path, str]]:
    """``(path, reason)`` for each file of ``paths`` that ``check_image`` refuses, in order.
    Threads: Pillow decodes without the GIL."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(pool.map(check_image, paths))
    return [(Path(p), r) for p, r in zip(paths, reasons, strict=True) if r is not None]
