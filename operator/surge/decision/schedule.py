"""Scheduled floors (``horizontal.schedules``): the replicas the active windows ask for at ``now``.

A floor is a temporary minReplicas: ``plan`` combines it as max with the reactive proposal (it never
lowers one) and hands it to behavior as the minimum, so like HPA's minReplicas it is reached at once, not
at the scale-up rate. The raised count is also what the stabilization window remembers, so when the window
ends the count comes down by the normal scale-down behavior, never in one step.

A free-capacity floor (``minFreeCapacity``) raises every Buffer metric's buffer instead: while the window is
open each one keeps max(its size, the floor) free slots, inside the metric's own calculation.
"""

from __future__ import annotations

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


def active_floor(schedules: tuple[Schedule, ...], now: float, max_replicas: int) -> ActiveFloor | None:
    """The highest floor among the schedules whose window holds ``now`` (bounded by maxReplicas)."""
    best: ActiveFloor | None = None
    for schedule in schedules:
        if schedule.min_replicas is None:
            continue
        window = schedule.window_at(now)
        if window is None:
            continue
        replicas = min(schedule.min_replicas, max_replicas)
        if best is None or replicas > best.replicas:
            best = ActiveFloor(schedule.name, replicas, window[1])
    return best


@dataclass(frozen=True, slots=True)
class FreeFloor:
    name: str  # the schedule asking for the most free capacity (the first one in the spec on a tie)
    slots: float  # free capacity every Buffer metric keeps, in the units of its used query
    end: float  # epoch seconds: when that schedule's window ends


def active_free_floor(schedules: tuple[Schedule, ...], now: float) -> FreeFloor | None:
    """The highest free-capacity floor among the schedules whose window holds ``now``."""
    best: FreeFloor | None = None
    for schedule in schedules:
        if schedule.min_free_capacity is None:
            continue
        window = schedule.window_at(now)
        if window is None:
            continue
        if best is None or schedule.min_free_capacity > best.slots:
            best = FreeFloor(schedule.name, schedule.min_free_capacity, window[1])
    return best


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
