"""Keeps glibc's malloc from holding on to memory the operator has freed.

Measured at 1,000 policies (bench/RESULTS.md, "Memory"): the start-up burst (every policy's first tick,
status write and the watch events they cause) leaves RSS at ~480 MB while the live Python heap is ~110 MB.
The difference is freed memory glibc keeps: per-thread arenas (one per I/O thread that allocates) and free
chunks inside the main heap that are not at its top, so a plain free() never returns them.

Two measures, both no-ops on a libc without them (musl):
- cap the arenas at 2 before the I/O threads exist (`mallopt(M_ARENA_MAX)`; an explicit MALLOC_ARENA_MAX in
  the environment wins);
- call `malloc_trim(0)` now and then, which hands free pages anywhere in the heaps back to the kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's <malloc.h>
DEFAULT_ARENAS = 2


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Returns True when the limit was applied; False on a non-glibc libc or when the user set one."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False  # glibc already read the user's choice at start-up
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_ARENA_MAX, arenas))
    if applied:
        log.debug("malloc arenas capped at %d", arenas)
    return applied


def release_free_memory() -> bool:
    """Returns freed heap pages to the kernel (blocking, a few ms: call it from a worker thread).

    True when memory was released, False when there was nothing to release or no malloc_trim.
    """
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
