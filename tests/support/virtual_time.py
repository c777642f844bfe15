"""An asyncio event loop on virtual time: sleeps and timeouts take no real time, and nothing else changes.

`loop.time()` starts at 0 and jumps straight to the next scheduled timer whenever every task is waiting, so
a test of a 15 s lease runs in milliseconds and is deterministic. `on_iteration` callbacks run once per loop
iteration (before time may advance): the place to check an invariant "at every instant".
Blocking in a thread would look like a deadlock (nothing scheduled): the loop raises instead of hanging.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.BaseSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._real = selectors.DefaultSelector()  # the loop's self-pipe still needs a real selector

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._loop.count_iteration()
        for check in self._loop.on_iteration:
            check()
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual time: every task waits and nothing is scheduled (deadlock)")
        self._loop.advance(timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    # Iterations without time passing before the loop calls it a livelock (a busy loop in the code under
    # test would otherwise hang the test run instead of failing it).
    MAX_ITERATIONS_PER_INSTANT = 100_000

    def __init__(self) -> None:
        self._now = 0.0
        self._same_instant = 0
        self.on_iteration: list[Callable[[], None]] = []
        super().__init__(selector=_VirtualSelector(self))

    def count_iteration(self) -> None:
        self._same_instant += 1
        if self._same_instant > self.MAX_ITERATIONS_PER_INSTANT:
            self._same_instant = 0
            raise RuntimeError(f"virtual time: livelock at t={self._now} (time never advances)")

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._same_instant = 0
        self._now += seconds


def run_virtual(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    """Runs `main(loop)` to completion on a fresh virtual-time loop; cancels what is left (as asyncio.run)."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
