"""glibc malloc tuning: the arena cap (a user's MALLOC_ARENA_MAX wins) and returning freed pages."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

from surge.malloc_tuning import limit_malloc_arenas, release_free_memory


def test_user_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_applied_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(2) is True


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_free_memory_returns_freed_heap_pages() -> None:
    """Freed chunks below a live one stay resident after free(); the trim hands them back."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 64 * 1024, 1600  # 100 MiB of heap chunks (below the mmap threshold)
    chunks = [libc.malloc(size) for _ in range(count)]
    for chunk in chunks:
        ctypes.memset(chunk, 1, size)
    for chunk in chunks[:-1]:  # the last one pins the top of the heap: free() alone cannot shrink it
        libc.free(chunk)
    before = _rss_kib()
    assert release_free_memory() is True
    after = _rss_kib()
    libc.free(chunks[-1])
    assert before - after > 50 * 1024, (before, after)
