"""Scheduled floors (``horizontal.schedules``): the replicas the active windows ask for at ``now``.

A floor is a temporary minReplicas: ``plan`` combines it as max with the reactive proposal (it never
lowers one) and hands it to behavior as the minimum, so like HPA's minReplicas it is reached at once, not
at the scale-up rate. The raised count is also what the stabilization window remembers, so when the window
ends the count comes down by the normal scale-down behavior, never in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

from surge.api.schedule import format_utc
from surge.api.spec import Schedule

__all__ = ["SCHEDULED_MINIMUM", "ActiveFloor", "active_floor"]

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
        window = schedule.window_at(now)
        if window is None:
            continue
        replicas = min(schedule.min_replicas, max_replicas)
        if best is None or replicas > best.replicas:
            best = ActiveFloor(schedule.name, replicas, window[1])
    return best
