"""Polling with a deadline: wait for a state, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError, TimeoutError):
    """The deadline passed. An AssertionError for pytest, a TimeoutError for scripts."""


class StopWaitingError(RuntimeError):
    """Raised by a probe when waiting longer cannot help (a process died): stops the wait at once."""


def wait_until(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Calls probe until it returns a truthy value and returns it; fails with `what` after `timeout` s.

    Exceptions from the probe count as "not yet" (the API may briefly refuse while something starts), and
    the last one is reported if the deadline passes; StopWaitingError propagates at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    last_value: T | None = None
    while True:
        try:
            last_value = probe()
            if last_value:
                return last_value
        except StopWaitingError:
            raise
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else f"; last value: {last_value!r}"
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def holds_for(probe: Callable[[], bool], *, seconds: float, what: str, interval: float = 0.5) -> None:
    """Asserts that probe stays true for `seconds` (e.g. "replicas never change in DryRun")."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not probe():
            raise AssertionError(f"{what} stopped holding")
        time.sleep(interval)
