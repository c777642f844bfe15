"""A bulkhead per Prometheus server: its own few threads, a hard cap on requests in flight, a deadline.

A slow or hanging server can then only use up its own threads: queries to other servers, and every other
blocking call of the operator (which runs on asyncio's default executor), never wait behind it. A full
bulkhead fails at once instead of queueing, because a queued query would only start after its tick is over.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from surge.metrics.prom_http import Abort, DeadlineError, RequestScope, request_scope

T = TypeVar("T")

# How long the awaiting coroutine waits past the deadline for the thread's own, more precise, failure.
GRACE = 0.1


class BulkheadFullError(Exception):
    def __init__(self, in_flight: int) -> None:
        super().__init__(f"{in_flight} requests still in flight")
        self.in_flight = in_flight


class BulkheadClosedError(Exception):
    pass


class Bulkhead:
    def __init__(self, name: str, size: int) -> None:
        self._size = max(1, size)
        self._executor = ThreadPoolExecutor(max_workers=self._size, thread_name_prefix=f"surge-prom-{name}")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests whose thread has not finished yet (also those whose caller gave up)."""
        with self._lock:
            return self._in_flight

    async def run(self, call: Callable[[], T], seconds: float) -> T:
        """Runs `call` in a request scope with a deadline `seconds` from now; never waits much longer.

        The slot is held until the thread returns, not until the caller stops waiting, so a hanging server
        cannot gather threads; the thread itself ends by the deadline (its sockets are bounded by it, and a
        caller that gives up or is cancelled shuts its socket down at once).
        """
        with self._lock:
            if self._in_flight >= self._size:
                raise BulkheadFullError(self._in_flight)
            self._in_flight += 1
        scope = RequestScope(deadline=time.monotonic() + seconds, abort=Abort())

        def scoped() -> T:
            with request_scope(scope):
                return call()

        try:
            future: Future[T] = self._executor.submit(scoped)
        except RuntimeError:  # shut down
            self._release(None)
            raise BulkheadClosedError from None
        # Runs when the thread has finished, or at once if the call was cancelled before it started.
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), seconds + GRACE)
        except TimeoutError:
            raise DeadlineError("deadline passed") from None
        finally:
            if not future.done():
                scope.abort.abort()

    def _release(self, _: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
