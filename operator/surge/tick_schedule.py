"""When a policy's loop ticks: first ticks admitted at a bounded rate, then a fixed period per policy.

Pure (time is passed in) so the rules are unit-tested without sleeping.
"""

from __future__ import annotations

MIN_SLEEP = 0.05  # a tick slower than its interval still yields before the next one


class FirstTickSlots:
    """Hands out first-tick times at most `rate` per second.

    A single new policy ticks at once. A burst (every existing policy when the operator starts, or 1,000
    policies applied together) is spread out instead of ticking in the same second, and since each loop then
    keeps its own period, it stays spread out.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._gap = 1.0 / rate
        self._next = float("-inf")

    def delay(self, now: float) -> float:
        """Seconds this loop waits before its first tick."""
        slot = max(now, self._next)
        self._next = slot + self._gap
        return slot - now


def next_tick_delay(next_in: float, tick_seconds: float) -> float:
    """Sleep so the next tick starts `next_in` after this one started (the period does not drift)."""
    return max(MIN_SLEEP, next_in - tick_seconds)
