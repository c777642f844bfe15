"""glibc malloc tuning: the arena cap (a user's MALLOC_ARENA_MAX wins) and returning freed pages."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

from surge.malloc_tuning import HeapTrimmer, limit_malloc_arenas, release_free_memory


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


MB = 2**20


class _FakeHeap:
    """RSS that a trim brings down to `live`; the test moves `rss` and `live` like a burst would."""

    def __init__(self, rss: int, live: int) -> None:
        self.rss, self.live, self.trims = rss, live, 0

    def trim(self) -> bool:
        self.trims += 1
        released = self.rss > self.live
        self.rss = self.live
        return released


def _checks(trimmer: HeapTrimmer, heap: _FakeHeap, count: int) -> list[bool]:
    return [trimmer.check() for _ in range(count)]


def test_a_steady_heap_is_never_trimmed() -> None:
    heap = _FakeHeap(rss=120 * MB, live=120 * MB)
    trimmer = HeapTrimmer(every=30, rss=lambda: heap.rss, trim=heap.trim)
    heap.rss = heap.live = 170 * MB  # grew, but less than 64 MB over the start: normal working set
    assert _checks(trimmer, heap, 20) == [False] * 20
    assert heap.trims == 0


def test_a_burst_is_given_back_with_retries_backing_off_while_it_lasts() -> None:
    heap = _FakeHeap(rss=110 * MB, live=110 * MB)
    trimmer = HeapTrimmer(every=30, max_every=240, rss=lambda: heap.rss, trim=heap.trim)
    heap.rss, heap.live = 480 * MB, 470 * MB  # burst still going: a trim frees little
    # Attempts at 30 s, then 60, 120, 240, 240 s later: 5 attempts in 23 checks.
    expected = [True, False, True] + [False] * 3 + [True] + [False] * 7 + [True] + [False] * 7 + [True]
    assert _checks(trimmer, heap, len(expected)) == expected
    heap.rss, heap.live = 484 * MB, 180 * MB  # burst over
    assert any(_checks(trimmer, heap, 8))  # within the back-off (240 s = 8 checks) it trims
    assert heap.rss == 180 * MB
    assert _checks(trimmer, heap, 10) == [False] * 10  # new baseline: steady again
    heap.rss = 300 * MB  # a later burst: trimmed at the next check
    assert trimmer.check() is True
    assert heap.rss == 180 * MB
