"""How much memory this process may use, and how much it has used at its peak: what the training
memory guard compares. On CPU the figures are resident memory (RSS) and the limits that end a
process that grows past them: the cgroup's (v2 ``memory.max``, v1 ``memory.limit_in_bytes``: the
OOM killer's), the kernel's ``MemAvailable``, and ``RLIMIT_DATA`` / ``RLIMIT_AS`` (allocations fail
past them). On CUDA, the device's free memory. ``RESNETKIT_MEMORY_LIMIT`` overrides them all
("2G", "512M", bytes): tests and users who share a machine set it to what a run may use."""

from __future__ import annotations

import ctypes
import os
import re
import resource
from dataclasses import dataclass
from pathlib import Path

import torch

MEMORY_LIMIT_ENV = "RESNETKIT_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a page-rounded 2^63


@dataclass(frozen=True)
class Budget:
    """The most this process's memory may reach (``limit``, bytes) and where that comes from."""

    limit: int
    source: str


def parse_size(text: str) -> int:
    """``"1.5G"``, ``"512M"``, ``"800MB"``, ``"1073741824"`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if m is None:
        raise ValueError(f"{MEMORY_LIMIT_ENV}={text!r}: expected a size such as 2G, 512M or a number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_size(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _status(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status, in bytes (None where there is no /proc)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def _cgroup_stat(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _cgroup_headroom() -> tuple[int, str] | None:
    """Bytes the cgroup may still grow by before its OOM killer acts: the limit less what it
    uses, page cache it can drop (inactive files) counted as free, as the kernel counts it."""
    for limit_file, usage_file, stat_file, cache_key in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat", "inactive_file"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "/sys/fs/cgroup/memory/memory.stat",
            "total_inactive_file",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < _NO_LIMIT and usage is not None:
            return limit - usage + _cgroup_stat(stat_file, cache_key), f"cgroup limit {limit_file}"
    return None


def _mem_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


# glibc's malloc (<malloc.h>): the size from which a block is its own mmap, and the free memory at
# the top of the heap past which it is given back. Setting either ends glibc's own adjustment.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HOLD_THRESHOLD = 2**30
RETURN_THRESHOLD = 128 * 2**10  # glibc's starting value, held fixed
_allocator_mode: str | None = None


def _mallopt(threshold: int) -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing changes
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, threshold) == 1 and mallopt(_M_TRIM_THRESHOLD, threshold) == 1
    if ok and threshold == RETURN_THRESHOLD:
        trim(0)  # what the heap holds now goes back too
    return ok


def trim_freed_memory() -> bool:
    """Give back what malloc holds freed right now (``malloc_trim(0)``), whatever the setting: a
    measurement of the memory a step needs then starts from the live tensors, not from blocks an
    earlier step left for reuse. False where the C library is not glibc."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True


def hold_freed_memory() -> bool:
    """Keep freed blocks of any size (to 1 GiB) in malloc's heap for the next step to reuse, as
    PyTorch's CUDA caching allocator keeps GPU memory: what CPU training runs with. By default glibc
    serves a block above its mmap threshold (raised as large blocks are freed, at most 32 MiB) with a
    fresh mmap that the kernel page-faults in and zeroes on every step, and a batch of 256 through a
    48-channel 28px layer is 38.5 MB a tensor. Measured (benchmarks/malloc_threshold.py, 2 cores):
    resnet8_pool at batch 256 trained 1.27x faster (1.38x in a real run: 679 against 491 images/s)
    with a fifth of the page faults; ResNet-20 at batch 128, whose tensors stay under 32 MiB, no
    slower. The process keeps its peak resident for reuse, as
    it would between steps anyway. Process-wide; False where the C library is not glibc."""
    global _allocator_mode
    if _allocator_mode is None and _mallopt(HOLD_THRESHOLD):
        _allocator_mode = "hold"
    return _allocator_mode == "hold"


def return_freed_memory() -> bool:
    """Give every freed block of 128 KiB or more back to the OS at once, for a step short of memory:
    blocks kept in heap arenas (and the backward's thread allocates from another arena than the
    forward's) make the resident peak outgrow the live tensors, and not in proportion to the batch,
    which the memory guard's probes extrapolate along. Measured (benchmarks/malloc_threshold.py,
    ResNet-110, batch 128, 32px): the checkpointed step's peak 3.2x lower, the plain one's 1.2x, the
    guard's estimate within 2% of both; but ResNet-20 trained at 0.52x its speed (every new tensor
    page-faulted in), so the memory guard calls this only for a step that is short of memory.
    Process-wide and lasting; False where the C library is not glibc."""
    global _allocator_mode
    if _allocator_mode != "return" and _mallopt(RETURN_THRESHOLD):
        _allocator_mode = "return"
    return _allocator_mode == "return"


def current_rss() -> int:
    rss = _status("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_budget(device: torch.device) -> Budget | None:
    """What this process's peak memory on ``device`` may reach, the tightest of the limits that
    apply (None: nothing known, as on a system without /proc)."""
    override = os.environ.get(MEMORY_LIMIT_ENV)
    if override:
        return Budget(parse_size(override), MEMORY_LIMIT_ENV)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return Budget(free + torch.cuda.memory_reserved(device), f"free memory of {device}")
    rss = current_rss()
    budgets: list[Budget] = []
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        budgets.append(Budget(rss + cgroup[0], cgroup[1]))
    available = _mem_available()
    if available is not None:
        budgets.append(Budget(rss + available, "MemAvailable in /proc/meminfo"))
    # An allocation past RLIMIT_DATA (private writable memory) or RLIMIT_AS (address space) fails.
    rlimits = ((resource.RLIMIT_DATA, "RLIMIT_DATA", "VmData"), (resource.RLIMIT_AS, "RLIMIT_AS", "VmSize"))
    for limit_id, name, field in rlimits:
        soft, _ = resource.getrlimit(limit_id)
        used = _status(field)
        if soft != resource.RLIM_INFINITY and used is not None:
            budgets.append(Budget(rss + soft - used, f"{name} (ulimit)"))
    return min(budgets, key=lambda b: b.limit) if budgets else None


def reset_peak(device: torch.device) -> bool:
    """Start measuring a new peak; False where the peak cannot be reset (no /proc/self/clear_refs)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        # "5" resets the resident high-water mark, VmHWM (Documentation/filesystems/proc.rst).
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory(device: torch.device) -> int:
    """The peak since ``reset_peak``: resident memory (VmHWM) on CPU, reserved memory on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_reserved(device)
    hwm = _status("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
