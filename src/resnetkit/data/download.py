"""Downloading one file atomically, verified by checksum."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DatasetError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def file_checksum(path: str | Path, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url: str, dest: str | Path, checksum: str, algorithm: str = "md5", timeout: float = 60.0) -> Path:
    """Download `url` to `dest`, verifying its `algorithm` ("md5" or "sha256") digest.

    The data goes to a temporary file beside `dest` that is renamed only once verified, so `dest`
    is never left partial or wrong; on any failure the temporary file is removed.
    """
    if algorithm not in ("md5", "sha256"):
        raise ValueError(f"algorithm must be 'md5' or 'sha256', got {algorithm!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    log.info("downloading %s to %s", url, dest)
    try:
        digest = hashlib.new(algorithm)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != checksum.lower():
            raise DatasetError(
                f"{dest}: {algorithm} checksum mismatch for {url}: expected {checksum.lower()}, got {actual}; "
                "the downloaded file was deleted"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as e:
        raise DatasetError(f"{dest}: could not download {url} ({e})") from e
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest
