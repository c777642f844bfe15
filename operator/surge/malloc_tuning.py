"""Keeps glibc's malloc from holding on to memory the operator has freed.

Measured at 1,000 policies (bench/RESULTS.md, "Memory"): the start-up burst (every policy's first tick,
status write and the watch events they cause) leaves RSS at ~480 MB while the live Python heap is ~110 MB.
The difference is freed memory glibc keeps: per-thread arenas (one per I/O thread that allocates) and free
chunks inside the main heap that are not at its top, so a plain free() never returns them.

Two measures, both no-ops on a libc without them (musl):
- cap the arenas at 2 before the I/O threads exist (`mallopt(M_ARENA_MAX)`; an explicit MALLOC_ARENA_MAX in
  the environment wins);
- call `malloc_trim(0)` now and then (HeapTrimmer decides when), which hands free pages anywhere in the heaps
  back to the kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's <malloc.h>
DEFAULT_ARENAS = 2


@functools.cache
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


def resident_bytes() -> int:
    """This process's RSS from /proc (Linux); 0 where that is not available."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class HeapTrimmer:
    """Decides when a trim is worth its cost.

    `malloc_trim` walks the whole heap while holding malloc's locks, so every other thread that allocates
    (the event loop too) waits for it: measured at 1,000 policies, trimming every 30 s raised the event
    loop's worst stall from 0.37 s to 0.87 s. So it trims only when RSS is `grow_bytes` above the level of
    the last trim that released memory (at first: the RSS at start-up), and after a trim that released
    little it waits twice as long before trying again (up to `max_every`). In a steady state it does not
    trim at all; after a burst (1,000 new policies) it retries until the burst is over and the memory is back.
    """

    def __init__(
        self,
        every: float,
        max_every: float = 600.0,
        grow_bytes: int = 64 * 2**20,
        rss: Callable[[], int] = resident_bytes,
        trim: Callable[[], bool] = release_free_memory,
    ) -> None:
        self._every, self._max_every, self._grow = every, max_every, grow_bytes
        self._rss, self._trim = rss, trim
        self._baseline = rss()  # RSS before any burst
        self.wait = every  # seconds between attempts while RSS stays high
        self._since_attempt = 0.0

    def check(self) -> bool:
        """Called every `every` seconds (blocking: from a worker thread); returns True if it trimmed."""
        self._since_attempt += self._every
        before = self._rss()
        if before - self._baseline < self._grow or self._since_attempt < self.wait:
            return False
        self._trim()
        after = self._rss()
        self._since_attempt = 0.0
        if before - after >= self._grow:
            self._baseline, self.wait = after, self._every
        else:
            self.wait = min(self.wait * 2, self._max_every)
        return True
