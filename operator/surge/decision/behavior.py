"""HPA autoscaling/v2 ``behavior``: stabilization windows, rate policies, min/max clamping.

Mirrors ``normalizeDesiredReplicasWithBehaviors`` in the HPA controller, but the memory the controller
keeps in process (recommendations, scale events) is an explicit immutable ``BehaviorState`` passed in
and returned, so the same code runs in the operator and in a simulation with a fake clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from surge.api.spec import Behavior, ScalingPolicyType, ScalingRules, SelectPolicy

__all__ = [
    "SCALE_DOWN_LIMIT",
    "SCALE_DOWN_STABILIZED",
    "SCALE_UP_LIMIT",
    "SCALE_UP_STABILIZED",
    "TOO_FEW_REPLICAS",
    "TOO_MANY_REPLICAS",
    "BehaviorResult",
    "BehaviorState",
    "Recommendation",
    "ScaleEvent",
    "normalize",
    "record_scale",
    "scale_down_limit",
    "scale_up_limit",
    "stabilize",
]

TOO_FEW_REPLICAS = "TooFewReplicas"
TOO_MANY_REPLICAS = "TooManyReplicas"
SCALE_UP_LIMIT = "ScaleUpLimit"
SCALE_DOWN_LIMIT = "ScaleDownLimit"
SCALE_UP_STABILIZED = "ScaleUpStabilized"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"


@dataclass(frozen=True, slots=True)
class Recommendation:
    time: float
    replicas: int


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    time: float
    change: int  # > 0 scale-up, < 0 scale-down


@dataclass(frozen=True, slots=True)
class BehaviorState:
    """Unstabilized recommendations and actual scale events, oldest first, pruned to the longest window."""

    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendations": [[r.time, r.replicas] for r in self.recommendations],
            "events": [[e.time, e.change] for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BehaviorState:
        try:
            recs = tuple(Recommendation(float(t), int(r)) for t, r in data.get("recommendations", ()))
            events = tuple(ScaleEvent(float(t), int(c)) for t, c in data.get("events", ()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid behavior state: {exc}") from exc
        return cls(recommendations=recs, events=events)


@dataclass(frozen=True, slots=True)
class BehaviorResult:
    replicas: int  # final desired replicas, within [min, max]
    stabilized: int  # after the stabilization window, before rate limits and clamping
    limited_by: str  # TooFewReplicas | TooManyReplicas | ScaleUpLimit | ScaleDownLimit | ""
    stabilized_by: str  # ScaleUpStabilized | ScaleDownStabilized | "" (stabilization changed the value)
    message: str
    state: BehaviorState
    # When a stabilization window holds the count: the time the last recommendation holding it leaves the
    # window, i.e. the earliest time the count can move on toward ``desired`` (None: nothing held it).
    hold_until: float | None = None


def _change_in_period(events: tuple[ScaleEvent, ...], now: float, period: float, up: bool) -> int:
    # Like HPA's getReplicasChangePerPeriod: events strictly after now - period.
    cutoff = now - period
    return sum(abs(e.change) for e in events if e.time > cutoff and (e.change > 0) == up)


def _period_start(current: int, events: tuple[ScaleEvent, ...], now: float, period: float) -> int:
    added = _change_in_period(events, now, period, up=True)
    deleted = _change_in_period(events, now, period, up=False)
    return current - added + deleted


def scale_up_limit(current: int, events: tuple[ScaleEvent, ...], rules: ScalingRules, now: float) -> int:
    """Highest replica count the scale-up policies allow now (never below ``current``)."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, events, now, policy.period_seconds)
        if policy.type is ScalingPolicyType.PODS:
            proposals.append(start + policy.value)
        else:
            proposals.append(-(-start * (100 + policy.value) // 100))  # exact ceil
    limit = min(proposals) if rules.select_policy is SelectPolicy.MIN else max(proposals)
    # Events still in the window can put the limit below current: hold, don't scale down.
    return max(limit, current)


def scale_down_limit(current: int, events: tuple[ScaleEvent, ...], rules: ScalingRules, now: float) -> int:
    """Lowest replica count the scale-down policies allow now (never above ``current``)."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, events, now, policy.period_seconds)
        if policy.type is ScalingPolicyType.PODS:
            proposals.append(start - policy.value)
        else:
            # HPA truncates: int32(start * (1 - value/100)).
            proposals.append(start * (100 - policy.value) // 100)
    # "Max" picks the policy allowing the biggest change, i.e. the lowest floor.
    limit = max(proposals) if rules.select_policy is SelectPolicy.MIN else min(proposals)
    return min(limit, current)


def stabilize(
    current: int, desired: int, behavior: Behavior, recommendations: tuple[Recommendation, ...], now: float
) -> int:
    """Stabilization windows: scale up to the lowest, down to the highest recent recommendation."""
    up_cutoff = now - behavior.scale_up.stabilization_window_seconds
    down_cutoff = now - behavior.scale_down.stabilization_window_seconds
    up = desired
    down = desired
    for rec in recommendations:
        if rec.time > up_cutoff:
            up = min(up, rec.replicas)
        if rec.time > down_cutoff:
            down = max(down, rec.replicas)
    return min(max(current, up), down)


def normalize(
    *,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    state: BehaviorState,
    now: float,
) -> BehaviorResult:
    """Apply stabilization, rate policies and [min, max] to a raw desired count (one HPA tick).

    The unstabilized ``desired`` is appended to the recommendation history in the returned state.
    Scale events are not recorded here: call ``record_scale`` once the scale actually happened.
    """
    if current > max_replicas:  # HPA corrects out-of-range targets directly, without behavior
        return BehaviorResult(
            max_replicas, max_replicas, TOO_MANY_REPLICAS, "", "current replicas above maxReplicas", state
        )
    if current < min_replicas:
        return BehaviorResult(
            min_replicas, min_replicas, TOO_FEW_REPLICAS, "", "current replicas below minReplicas", state
        )

    stabilized = stabilize(current, desired, behavior, state.recommendations, now)
    stabilized_by = ""
    message = ""
    if stabilized != desired:
        if desired >= current:
            stabilized_by = SCALE_UP_STABILIZED
            message = (
                "recent recommendations were lower than current one, "
                "applying the lowest recent recommendation"
            )
        else:
            stabilized_by = SCALE_DOWN_STABILIZED
            message = (
                "recent recommendations were higher than current one, "
                "applying the highest recent recommendation"
            )
    new_state = _prune(
        BehaviorState((*state.recommendations, Recommendation(now, desired)), state.events), behavior, now
    )

    replicas, limited_by, limit_message = _rate_limit(
        current, stabilized, min_replicas, max_replicas, behavior, new_state.events, now
    )
    hold = _hold_until(stabilized, desired, behavior, state.recommendations, now) if stabilized_by else None
    return BehaviorResult(
        replicas, stabilized, limited_by, stabilized_by, limit_message or message, new_state, hold
    )


def _hold_until(
    held: int, desired: int, behavior: Behavior, recommendations: tuple[Recommendation, ...], now: float
) -> float | None:
    """When the window stops holding ``held``: the newest recommendation at least as far from ``desired``
    as ``held`` (>= held on the way down, <= held on the way up) leaves the window then."""
    down = desired < held
    rules = behavior.scale_down if down else behavior.scale_up
    window = rules.stabilization_window_seconds
    times = [
        r.time
        for r in recommendations
        if r.time > now - window and (r.replicas >= held if down else r.replicas <= held)
    ]
    return max(times) + window if times else None


def _rate_limit(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    events: tuple[ScaleEvent, ...],
    now: float,
) -> tuple[int, str, str]:
    if desired > current:
        up_limit = scale_up_limit(current, events, behavior.scale_up, now)
        if max_replicas > up_limit:
            allowed, reason = up_limit, SCALE_UP_LIMIT
            message = "the desired replica count is increasing faster than the maximum scale rate"
        else:
            allowed, reason = max_replicas, TOO_MANY_REPLICAS
            message = "the desired replica count is more than the maximum replica count"
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        down_limit = scale_down_limit(current, events, behavior.scale_down, now)
        if min_replicas < down_limit:
            allowed, reason = down_limit, SCALE_DOWN_LIMIT
            message = "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            allowed, reason = min_replicas, TOO_FEW_REPLICAS
            message = "the desired replica count is less than the minimum replica count"
        if desired < allowed:
            return allowed, reason, message
    return desired, "", ""


def _longest_window(behavior: Behavior) -> float:
    periods = [p.period_seconds for p in behavior.scale_up.policies + behavior.scale_down.policies]
    return float(
        max(
            [
                behavior.scale_up.stabilization_window_seconds,
                behavior.scale_down.stabilization_window_seconds,
                *periods,
            ]
        )
    )


def _prune(state: BehaviorState, behavior: Behavior, now: float) -> BehaviorState:
    # Anything at or before now - longest window can no longer influence a decision.
    cutoff = now - _longest_window(behavior)
    return BehaviorState(
        recommendations=tuple(r for r in state.recommendations if r.time > cutoff),
        events=tuple(e for e in state.events if e.time > cutoff),
    )


def record_scale(
    state: BehaviorState, behavior: Behavior, now: float, from_replicas: int, to_replicas: int
) -> BehaviorState:
    """Remember a scale that happened (after a successful write), for the rate policies."""
    if to_replicas == from_replicas:
        return state
    updated = BehaviorState(
        state.recommendations, (*state.events, ScaleEvent(now, to_replicas - from_replicas))
    )
    return _prune(updated, behavior, now)
