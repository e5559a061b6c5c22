"""Atomic writes: every file that matters (checkpoints, weights, cards, logs) appears whole or not at all."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TMP_SUFFIX = ".tmp"


class DiskFullError(OSError):
    """The disk filled up while writing; the file that was there before is untouched."""


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` then rename over ``path``: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        try:
            write(tmp)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            kept = f"; the previous {path.name} is intact" if path.exists() else ""
            raise DiskFullError(errno.ENOSPC, f"no space left on device while writing {path}{kept}") from None
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private (0600); the file is not a secret
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def ensure_writable(folder: Path, flag: str = "--out") -> Path:
    """``folder``, created if need be, checked writable before any work is spent on what goes there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=TMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise NotWritableError(f"{flag} {folder}: cannot write there ({e.strerror or e})") from None
    return folder


class NotWritableError(ValueError):
    """An output folder that cannot be written (read-only, no permission, a file in the way)."""


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that writes killed half-way left in ``folder`` (``.NAME.*.tmp``);
    returns what was removed. Safe while nothing else writes there: the real files are untouched."""
    removed = []
    for tmp in sorted(Path(folder).glob(f".*{TMP_SUFFIX}")):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()
