"""How the process's allocator treats the memory a render frees.

A render allocates and frees thousands of large tensors (a block's layers, canvases and estimates, up to tens
of megabytes each). With glibc's defaults many of them are fresh mappings of the system's memory: the kernel
maps and zeroes their pages when they are first touched and unmaps them when the tensor is freed, and with two
threads every unmapping also interrupts the other core to flush its address translations. Each render thread
also has an arena of its own, whose heaps are made and dropped as its blocks come and go.

:func:`tune_allocator` makes glibc keep what is freed and hand it out again: one arena for every thread (the
render's workers reuse each other's freed memory), blocks up to 1 GiB from the heap instead of mappings of
their own, and no trimming of the heap while the process runs: the process keeps the memory of its largest
render for the next one, and gives it back when it exits. A 12 MP render at a 60 px CoC on two threads takes
some 5% less CPU and wall time, and its process 60% less system time (docs/performance.md, "The allocator").

The command line tunes its own process at its start, and the processes of a local batch pool theirs; Ray's
worker processes are Ray's and are left as they are. A program that renders large photos can call
:func:`tune_allocator` at its start, before it starts threads (the one arena applies to threads that have
none yet). ``LENSBLUR_ALLOCATOR=system`` leaves the allocator as it is. Elsewhere than glibc (macOS, Windows,
musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["tune_allocator", "tuned"]

# mallopt's parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

# Blocks up to this size come from the heap; larger ones (a 24 MP photo's three float channels are 0.3 GB)
# keep their own mappings.
MMAP_THRESHOLD = 1 << 30
# The heap is not trimmed while the process runs (the largest value mallopt takes, an int).
TRIM_THRESHOLD = 2**31 - 1

_TUNED = False


def _glibc():
    """This process's glibc, or None elsewhere."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        return ctypes.CDLL("libc.so.6")
    except (AttributeError, ValueError, OSError):     # no confstr (Windows), no such name, no such library
        return None


def tune_allocator() -> bool:
    """Make this process's allocator keep the memory that is freed for reuse (see the module's text).

    ``LENSBLUR_ALLOCATOR=system`` leaves the allocator as it is. Calling it again does nothing.

    Returns:
        Whether the allocator is tuned (False elsewhere than glibc, or when opted out).
    """
    global _TUNED
    if _TUNED:
        return True
    if os.environ.get("LENSBLUR_ALLOCATOR", "").strip().lower() == "system":
        return False
    libc = _glibc()
    if libc is None:
        return False
    applied = [libc.mallopt(_M_ARENA_MAX, 1), libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
               libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
    _TUNED = all(value == 1 for value in applied)
    return _TUNED


def tuned() -> bool:
    """Whether :func:`tune_allocator` has tuned this process."""
    return _TUNED
