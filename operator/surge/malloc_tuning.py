"""Caps glibc's malloc arenas before the operator starts its I/O threads.

glibc gives each thread that allocates concurrently its own arena (up to 8 per core) and rarely returns their
memory. Measured at 1,000 policies (bench/RESULTS.md): the 16 I/O threads parsing responses in the start-up
burst took RSS from ~120 MB to ~480 MB with no more live Python objects; with 2 arenas it stayed at 160 MB.
Setting MALLOC_ARENA_MAX in the environment does the same, but only if it is set before the process starts;
this works however the operator is launched (container, `make run`, tests).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's <malloc.h>
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Returns True when the limit was applied; False on a non-glibc libc or when the user set one."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False  # glibc already read the user's choice at start-up
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_ARENA_MAX, arenas))
    if applied:
        log.debug("malloc arenas capped at %d", arenas)
    return applied
