"""Returning freed memory to the system. A large image decodes into a buffer of hundreds of MB on
one of the decode threads; glibc's malloc keeps what such threads freed in their arenas, so after
a few large legal requests the server held 5.8x its starting RSS (issue 21: 371 MiB at start,
2,136 MiB after two requests of 32 images of 6000x6000, measured with ``/proc``). ``malloc_trim``
hands the free pages of every arena back."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable

# Past this many decoded pixels in one request, its buffers are worth returning (a trim walks
# every arena: milliseconds, too dear for each small request).
TRIM_PIXELS = 4_000_000


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator returns memory itself
        return None
    return trim


def release_freed_memory() -> bool:
    """Free heap pages back to the system; False where the C library has no ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def freeze_loaded_objects() -> None:
    """Move every object alive now (the models, PyTorch, OpenVINO, FastAPI: a few hundred thousand)
    into the collector's permanent generation, where its full collections no longer walk them.
    Under load a server's requests allocate enough for a full collection about every second, and
    each walked the whole heap with the event loop stopped: measured on ResNet-20 at 32 connections
    (``benchmarks/serve_load.py``), one full collection every 1.1-1.2 s took 138-158 ms, collected
    nothing, and stalled every request in flight (p99 5.1x p50). Call once the models are loaded."""
    gc.collect()
    gc.freeze()
