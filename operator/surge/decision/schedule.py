"""Scheduled floors (``horizontal.schedules``): the replicas the active windows ask for at ``now``.

A floor is a temporary minReplicas: ``plan`` combines it as max with the reactive proposal (it never
lowers one) and hands it to behavior as the minimum, so like HPA's minReplicas it is reached at once, not
at the scale-up rate. The raised count is also what the stabilization window remembers, so when the window
ends the count comes down by the normal scale-down behavior, never in one step.

A free-capacity floor (``minFreeCapacity``) raises every Buffer metric's buffer instead: while the window is
open each one keeps max(its size, the floor) free slots, inside the metric's own calculation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from surge.api.schedule import format_utc
from surge.api.spec import Schedule

__all__ = [
    "SCHEDULED_MINIMUM",
    "ActiveFloor",
    "ActiveSchedule",
    "FreeFloor",
    "active_floor",
    "active_free_floor",
]

# lastDecision.limitedBy and the ScalingLimited reason when a schedule's floor set the count.
SCHEDULED_MINIMUM = "ScheduledMinimum"


@dataclass(frozen=True, slots=True)
class ActiveFloor:
    name: str  # the schedule asking for the most replicas (the first one in the spec on a tie)
    replicas: int
    end: float  # epoch seconds: when that schedule's window ends

    def to_status(self) -> dict[str, object]:
        """``status.activeSchedule``: which floor is in force, and until when."""
        return {"name": self.name, "minReplicas": self.replicas, "until": format_utc(self.end)}

    def describe(self) -> str:
        return f"schedule {self.name}: at least {self.replicas} replicas until {format_utc(self.end)}"


def _highest_open(
    schedules: tuple[Schedule, ...], now: float, value: Callable[[Schedule], float | None]
) -> tuple[Schedule, float, float] | None:
    """(schedule, its value, its window's end) for the highest ``value`` among the schedules whose window
    holds ``now`` and that set one; the first in the spec wins a tie."""
    best: tuple[Schedule, float, float] | None = None
    for schedule in schedules:
        amount = value(schedule)
        if amount is None:
            continue
        window = schedule.window_at(now)
        if window is not None and (best is None or amount > best[1]):
            best = (schedule, amount, window[1])
    return best


def active_floor(schedules: tuple[Schedule, ...], now: float, max_replicas: int) -> ActiveFloor | None:
    """The highest floor among the schedules whose window holds ``now`` (bounded by maxReplicas)."""
    found = _highest_open(
        schedules, now, lambda s: None if s.min_replicas is None else min(s.min_replicas, max_replicas)
    )
    return None if found is None else ActiveFloor(found[0].name, int(found[1]), found[2])


@dataclass(frozen=True, slots=True)
class FreeFloor:
    name: str  # the schedule asking for the most free capacity (the first one in the spec on a tie)
    slots: float  # free capacity every Buffer metric keeps, in the units of its used query
    end: float  # epoch seconds: when that schedule's window ends


def active_free_floor(schedules: tuple[Schedule, ...], now: float) -> FreeFloor | None:
    """The highest free-capacity floor among the schedules whose window holds ``now``."""
    found = _highest_open(schedules, now, lambda s: s.min_free_capacity)
    return None if found is None else FreeFloor(found[0].name, found[1], found[2])


@dataclass(frozen=True, slots=True)
class ActiveSchedule:
    """What ``status.activeSchedule`` shows: the replica floor in force and/or the open free floor."""

    replicas: ActiveFloor | None = None
    free: FreeFloor | None = None

    def to_status(self) -> dict[str, object]:
        # The replica floor's schedule names the entry; a free floor of another schedule is named apart.
        out: dict[str, object] = {}
        if self.replicas is not None:
            out = self.replicas.to_status()
        if self.free is not None:
            if self.replicas is None:
                out = {"name": self.free.name, "until": format_utc(self.free.end)}
            elif self.free.name != self.replicas.name:
                out["freeCapacitySchedule"] = self.free.name
            out["minFreeCapacity"] = int(self.free.slots)
        return out
