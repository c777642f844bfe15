"""One LIST per namespace shared by every policy that asks within `max_age`.

Without it, each policy tick lists its target's pods and their metrics: at 1,000 policies and 15 s that is
130 LIST requests per second. With it, policies in one namespace share a response no older than they accept,
and concurrent callers wait for the request already in flight instead of sending their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    fetched_at: float
    value: T


class SharedLister(Generic[T]):
    def __init__(
        self, fetch: Callable[[str], Awaitable[T]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._entries: dict[str, _Entry[T]] = {}
        self._inflight: dict[str, asyncio.Future[T]] = {}

    async def get(self, namespace: str, max_age: float) -> T:
        entry = self._entries.get(namespace)
        if entry is not None and self._clock() - entry.fetched_at <= max_age:
            return entry.value
        pending = self._inflight.get(namespace)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._inflight[namespace] = future
        started = self._clock()
        try:
            value = await self._fetch(namespace)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            self._inflight.pop(namespace, None)
        # The response is as old as the moment it was requested, not the moment it arrived.
        self._entries[namespace] = _Entry(started, value)
        future.set_result(value)
        return value

    def forget(self, namespace: str) -> None:
        self._entries.pop(namespace, None)
