"""KEDA-style fallback: after N consecutive ticks where *every* metric failed, use fixed replicas.

A tick where at least one metric works resets the count (that metric's proposal is trusted, and
the failed ones only block scale-down, see plan.py).
"""

from __future__ import annotations

from surge.api.spec import Fallback, FallbackBehavior

__all__ = ["fallback_replicas", "next_failure_count"]


def next_failure_count(previous: int, all_failed: bool) -> int:
    """Consecutive all-metrics-failed ticks, including this one."""
    return previous + 1 if all_failed else 0


def fallback_replicas(
    fallback: Fallback | None, failures: int, min_replicas: int, max_replicas: int, *, current: int
) -> int | None:
    """The fallback replica count (clamped to [min, max]) once the threshold is reached, else None.

    RaiseOnly (default): the fallback count is a floor, so missing data never scales down; Exact: hold
    exactly the fallback count (KEDA's behaviour), down too if the user asked for it.
    """
    if fallback is None or failures < fallback.failure_threshold:
        return None
    wanted = fallback.replicas
    if fallback.behavior is FallbackBehavior.RAISE_ONLY:
        wanted = max(current, wanted)
    return min(max(wanted, min_replicas), max_replicas)
