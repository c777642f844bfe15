"""One LIST per namespace shared by every policy that asks within `max_age`.

Without it, each policy tick lists its target's pods and their metrics: at 1,000 policies and 15 s that is
130 LIST requests per second. With it, policies in one namespace share a response no older than they accept,
and concurrent callers wait for the request already in flight instead of sending their own.

Callers may also accept a listing up to `stale_ok` seconds past `max_age` while a fresh one is fetched in the
background: then no tick waits for a LIST (at 1,000 pods one takes 0.5-2 s, and every tick that arrived
meanwhile used to wait for it, which made the slowest ticks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass
class _Entry(Generic[T]):
    fetched_at: float
    value: T


class SharedLister(Generic[T]):
    """The LIST runs in a task owned by the lister; callers await it shielded.

    A caller's cancellation (kopf cancelling one policy's daemon) therefore never cancels the request the
    other policies in the namespace are waiting for.
    """

    def __init__(
        self, fetch: Callable[[str], Awaitable[T]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._entries: dict[str, _Entry[T]] = {}
        self._inflight: dict[str, asyncio.Task[T]] = {}  # also the strong references until they finish

    async def get(self, namespace: str, max_age: float, stale_ok: float = 0.0) -> T:
        entry = self._entries.get(namespace)
        if entry is not None:
            age = self._clock() - entry.fetched_at
            if age <= max_age:
                return entry.value
            if age <= max_age + stale_ok:
                self._start(namespace)  # refresh in the background; this caller uses what is there
                return entry.value
        return await asyncio.shield(self._start(namespace))

    def _start(self, namespace: str) -> asyncio.Task[T]:
        task = self._inflight.get(namespace)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._fetch_and_keep(namespace), name=f"surge-list-{namespace}"
            )
            self._inflight[namespace] = task
            task.add_done_callback(lambda done: self._finished(namespace, done))
        return task

    def _finished(self, namespace: str, task: asyncio.Task[T]) -> None:
        if self._inflight.get(namespace) is task:
            del self._inflight[namespace]
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a background refresh nobody awaited does not log "never retrieved";
            # the next caller past the stale limit fetches again and sees the error itself.
            log.debug("listing of %s failed: %s", namespace, task.exception())

    async def _fetch_and_keep(self, namespace: str) -> T:
        started = self._clock()
        value = await self._fetch(namespace)
        # The response is as old as the moment it was requested, not the moment it arrived.
        self._entries[namespace] = _Entry(started, value)
        return value

    def forget(self, namespace: str) -> None:
        self._entries.pop(namespace, None)
