"""One planner for both dimensions: size the pods first, then count pods of the new size.

    vertical recommendation -> resizes (new requests)
    -> per-metric HPA proposals, CPU utilization measured against the NEW requests
    -> max of proposals; failed metrics block scale-down; all failed -> keep, then fallback
    -> predictive (only adds) -> behavior (stabilization, rate limits, [min, max])

Because horizontal sees the requests vertical is about to set, a vertical CPU raise lowers the
utilization horizontal computes instead of both adding capacity (the HPA-vs-VPA fight).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from surge.api import conditions as cond
from surge.api import reasons
from surge.api.spec import (
    ContainerPolicyMode,
    FallbackBehavior,
    HorizontalSpec,
    MetricTargetType,
    PolicySpec,
    ResourceAmounts,
    ResourceMetricSpec,
    UpdateMode,
    VerticalSpec,
)
from surge.api.status import ContainerRecommendationStatus, LastDecision, MetricStatus
from surge.decision.behavior import BehaviorState, normalize, record_scale
from surge.decision.fallback import fallback_replicas, next_failure_count
from surge.decision.horizontal import MetricProposal, propose
from surge.decision.model import EngineSettings, Observation, PodInfo
from surge.decision.predictive import PredictiveState, predict_replicas
from surge.decision.schedule import (
    SCHEDULED_MINIMUM,
    ActiveSchedule,
    active_floor,
    active_free_floor,
)
from surge.decision.vertical import ContainerEstimate, ContainerResize, VerticalState, vertical_step

__all__ = ["ConditionUpdate", "Decision", "PlanState", "plan"]

# Modes in which a resize reaches the running pods, so horizontal must count pods of the new size.
_LIVE_RESIZE_MODES = (UpdateMode.RECREATE, UpdateMode.IN_PLACE, UpdateMode.IN_PLACE_OR_RECREATE)
_DEFAULT_HALF_LIFE = 24 * 3600.0
_MAX_TEXT = 1024  # CRD maxLength of lastDecision.reason and currentMetrics[].error


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class PlanState:
    """Everything the planner remembers between ticks; persist ``to_dict()`` (checkpoint)."""

    behavior: BehaviorState = field(default_factory=BehaviorState)
    consecutive_failures: int = 0
    predictive: PredictiveState = field(default_factory=PredictiveState)
    vertical: VerticalState = field(default_factory=VerticalState)

    def to_dict(self) -> dict[str, Any]:
        return {
            "behavior": self.behavior.to_dict(),
            "consecutiveFailures": self.consecutive_failures,
            "predictive": self.predictive.to_dict(),
            "vertical": self.vertical.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], spec: PolicySpec | None = None) -> PlanState:
        """Restore a checkpoint. Raises ValueError when it is malformed (start from ``PlanState()``)."""
        half_life = spec.vertical.half_life if spec is not None and spec.vertical else _DEFAULT_HALF_LIFE
        try:
            failures = int(data.get("consecutiveFailures", 0))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid plan state: {exc}") from exc
        return cls(
            behavior=BehaviorState.from_dict(data.get("behavior") or {}),
            consecutive_failures=max(failures, 0),
            predictive=PredictiveState.from_dict(data.get("predictive") or {}),
            vertical=VerticalState.from_dict(data.get("vertical") or {}, half_life),
        )


@dataclass(frozen=True, slots=True)
class ConditionUpdate:
    """Arguments for ``surge.api.conditions.set_condition``."""

    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do this tick, why, and the state to persist afterwards."""

    time: float
    from_replicas: int
    to_replicas: int
    reason: str  # one sentence a user understands
    limited_by: str = ""  # TooFewReplicas | TooManyReplicas | ScaleUpLimit | ScaleDownLimit | *Stabilized
    proposals: tuple[MetricProposal, ...] = ()
    recommended_replicas: int | None = None  # before behavior/clamping (None: no horizontal proposal)
    scaling_active: bool = True  # False: no metric worked / autoscaling disabled
    fallback_active: bool = False
    estimates: tuple[ContainerEstimate, ...] = ()  # vertical recommendation (also in updateMode Off)
    resizes: tuple[ContainerResize, ...] = ()  # containers to resize (empty in updateMode Off)
    oom_containers: frozenset[str] = frozenset()  # new OOM kills this tick (in-place resizes per pod)
    conflicts: tuple[str, ...] = ()
    # State to persist when the decision was carried out (scale event recorded)...
    state: PlanState = field(default_factory=PlanState)
    # ...and when it was not (DryRun, paused, or the write failed): no scale event.
    unapplied_state: PlanState = field(default_factory=PlanState)
    hold_until: float | None = None  # a stabilization window holds the count until then
    active_schedule: ActiveSchedule | None = None  # the highest open schedule floors (status.activeSchedule)

    @property
    def scale_changed(self) -> bool:
        return self.to_replicas != self.from_replicas

    def metric_statuses(self) -> list[MetricStatus]:
        return [
            MetricStatus(
                name=p.name,
                type=p.type.value,
                value=p.value,
                target=p.target,
                proposed_replicas=p.replicas,
                error=_clip(p.error),
            )
            for p in self.proposals
        ]

    def recommendation_statuses(self) -> list[ContainerRecommendationStatus]:
        return [e.to_status() for e in self.estimates]

    def last_decision(self, time_iso: str, hold_until_iso: str = "") -> LastDecision:
        return LastDecision(
            time_iso,
            self.from_replicas,
            self.to_replicas,
            _clip(self.reason),
            self.limited_by,
            hold_until_iso,
        )

    def conditions(self) -> tuple[ConditionUpdate, ...]:
        """HPA-style conditions (AbleToScale, ScalingActive, ScalingLimited) plus Surge's own."""
        failed = [p for p in self.proposals if not p.ok]
        stabilized = self.limited_by.endswith("Stabilized")
        updates = [
            ConditionUpdate(
                cond.ABLE_TO_SCALE,
                True,
                self.limited_by if stabilized else reasons.READY_FOR_NEW_SCALE,
                self.reason
                if stabilized
                else "the last scale time was sufficiently old as to warrant a new scale",
            ),
            _scaling_active(self, failed),
            ConditionUpdate(
                cond.SCALING_LIMITED,
                bool(self.limited_by) and not stabilized,
                self.limited_by if self.limited_by and not stabilized else reasons.DESIRED_WITHIN_RANGE,
                self.reason
                if self.limited_by and not stabilized
                else "the desired count is within the acceptable range",
            ),
        ]
        if self.proposals:
            updates.append(_metrics_available(self, failed))
        updates.append(
            ConditionUpdate(cond.CONFLICT, True, reasons.RESOURCE_CONFLICT, "; ".join(self.conflicts))
            if self.conflicts
            else ConditionUpdate(
                cond.CONFLICT, False, reasons.NO_CONFLICT, "horizontal and vertical are coordinated"
            )
        )
        return tuple(updates)


def _scaling_active(decision: Decision, failed: list[MetricProposal]) -> ConditionUpdate:
    if decision.scaling_active:
        return ConditionUpdate(
            cond.SCALING_ACTIVE,
            True,
            reasons.VALID_METRIC_FOUND,
            "the planner was able to compute a replica count",
        )
    if not decision.proposals:
        return ConditionUpdate(cond.SCALING_ACTIVE, False, reasons.SCALING_DISABLED, decision.reason)
    first = failed[0] if failed else decision.proposals[0]
    return ConditionUpdate(cond.SCALING_ACTIVE, False, reasons.failed_metric(first.type), decision.reason)


def _metrics_available(decision: Decision, failed: list[MetricProposal]) -> ConditionUpdate:
    if decision.fallback_active:
        return ConditionUpdate(cond.METRICS_AVAILABLE, False, reasons.FALLBACK_ACTIVE, decision.reason)
    if not failed:
        return ConditionUpdate(
            cond.METRICS_AVAILABLE, True, reasons.ALL_METRICS_AVAILABLE, "all metrics returned data"
        )
    errors = "; ".join(f"{p.name}: {p.error}" for p in failed)
    reason = (
        reasons.ALL_METRICS_FAILED if len(failed) == len(decision.proposals) else reasons.SOME_METRICS_FAILED
    )
    return ConditionUpdate(cond.METRICS_AVAILABLE, False, reason, errors)


# --------------------------------------------------------------------------------------------------


def _resized_pods(pods: Sequence[PodInfo], resizes: Sequence[ContainerResize]) -> list[PodInfo]:
    """The pods as they will be after the resizes: the new requests replace the old ones."""
    new = {r.container: r.new_requests for r in resizes}
    out = []
    for pod in pods:
        requests = dict(pod.requests)
        for name, amounts in requests.items():
            if name in new:
                target = new[name]
                requests[name] = ResourceAmounts(
                    cpu=target.cpu if target.cpu is not None else amounts.cpu,
                    memory=target.memory if target.memory is not None else amounts.memory,
                )
        out.append(replace(pod, requests=requests))
    return out


def _conflicts(horizontal: HorizontalSpec | None, vertical: VerticalSpec | None) -> tuple[str, ...]:
    # Only Initial mode can fight: it sizes new pods only, so old and new pods differ in size while
    # horizontal reasons about utilization of requests.
    if horizontal is None or vertical is None or vertical.update_mode is not UpdateMode.INITIAL:
        return ()
    found = []
    for metric in horizontal.metrics:
        if not isinstance(metric, ResourceMetricSpec):
            continue
        res = metric.resource
        if res.target.type is not MetricTargetType.UTILIZATION:
            continue
        controlled = any(
            p.mode is ContainerPolicyMode.AUTO and res.name in p.controlled_resources
            for p in (*vertical.container_policies, vertical.policy_for("*"))
        )
        if controlled:
            found.append(
                f"vertical updateMode Initial resizes only new pods while horizontal scales on "
                f"{res.name} utilization; use InPlace/Recreate or an AverageValue target"
            )
    return tuple(found)


def plan(
    spec: PolicySpec,
    obs: Observation,
    state: PlanState,
    now: float,
    settings: EngineSettings = EngineSettings(),  # noqa: B008 - frozen value, shared safely
) -> Decision:
    """Decide replicas and container sizes for one tick. Pure: same inputs, same Decision."""
    current = obs.current_replicas
    vstate = state.vertical
    estimates: tuple[ContainerEstimate, ...] = ()
    resizes: tuple[ContainerResize, ...] = ()
    oom_containers: frozenset[str] = frozenset()
    if spec.vertical is not None:
        outcome = vertical_step(state.vertical, spec.vertical, obs, now)
        vstate, estimates, resizes = outcome.state, outcome.estimates, outcome.resizes
        oom_containers = outcome.oom_containers
    base = PlanState(state.behavior, state.consecutive_failures, state.predictive, vstate)
    conflicts = _conflicts(spec.horizontal, spec.vertical)
    if spec.horizontal is None:
        why = "; ".join(r.reason for r in resizes) or "no resize needed"
        return Decision(
            now,
            current,
            current,
            f"vertical only: {why}",
            estimates=estimates,
            resizes=resizes,
            oom_containers=oom_containers,
            conflicts=conflicts,
            state=base,
            unapplied_state=base,
        )
    hor = spec.horizontal

    live = spec.vertical is not None and spec.vertical.update_mode in _LIVE_RESIZE_MODES
    pods = _resized_pods(obs.pods, resizes) if resizes and live else obs.pods
    # A scheduled free-capacity floor raises each Buffer metric's buffer inside its own calculation.
    free_floor = active_free_floor(hor.schedules, now)
    min_free, min_free_by = (free_floor.slots, f"schedule {free_floor.name}") if free_floor else (0.0, "")
    proposals = tuple(
        propose(m, obs, now, hor.tolerance, pods, settings, min_free=min_free, min_free_by=min_free_by)
        for m in hor.metrics
    )
    ok = [p for p in proposals if p.ok]
    failed = [p for p in proposals if not p.ok]
    failures = next_failure_count(state.consecutive_failures, all_failed=not ok)

    common: dict[str, Any] = {
        "proposals": proposals,
        "estimates": estimates,
        "resizes": resizes,
        "oom_containers": oom_containers,
        "conflicts": conflicts,
    }
    if current == 0 and hor.min_replicas != 0:
        # HPA: a target scaled to zero by hand means "autoscaling off" unless minReplicas is 0.
        st = replace(base, consecutive_failures=failures)
        reason = "target has 0 replicas and minReplicas > 0: autoscaling is disabled until it is scaled up"
        return Decision(now, 0, 0, reason, scaling_active=False, state=st, unapplied_state=st, **common)

    # A scheduled floor is a temporary minReplicas (decision/schedule.py): every path below honours it.
    scheduled = active_floor(hor.schedules, now, hor.max_replicas)
    if scheduled is not None and scheduled.replicas > hor.min_replicas:
        hor = replace(hor, min_replicas=scheduled.replicas)
    else:
        scheduled = None
    if scheduled is not None or free_floor is not None:  # status.activeSchedule, on a hold too
        common["active_schedule"] = ActiveSchedule(scheduled, free_floor)

    fallback = None
    if not ok:
        fallback = fallback_replicas(
            hor.fallback, failures, hor.min_replicas, hor.max_replicas, current=current
        )
        if fallback is None:
            errors = "; ".join(f"{p.name}: {p.error}" for p in failed)
            reason = f"all metrics failed ({errors})"
            if hor.fallback is not None:
                left = hor.fallback.failure_threshold - failures
                reason += f"; fallback to {hor.fallback.replicas} after {left} more failure(s)"
            return _hold(hor, current, reason, replace(base, consecutive_failures=failures), now, common)
        raw = fallback
        assert hor.fallback is not None  # fallback_replicas answers None without one
        floor = (
            f" (behavior {hor.fallback.behavior.value}: at least {hor.fallback.replicas}, "
            "never fewer than now)"
            if hor.fallback.behavior is FallbackBehavior.RAISE_ONLY
            else ""
        )
        headline = (
            f"all {len(failed)} metric(s) failed {failures} times in a row "
            f"({failed[0].name}: {failed[0].error}): fallback to {fallback} replicas{floor}"
        )
        predictive = state.predictive
    else:
        winner = max(ok, key=lambda p: p.replicas or 0)
        raw = winner.replicas or 0
        headline = f"{winner.name}: {winner.detail} -> {raw}"
        if len(ok) > 1:
            headline += f" (max of {len(ok)} metrics)"
        predictive = state.predictive
        if hor.predictive is not None:
            if not failed:  # a partial maximum would teach the trend a false dip
                predictive = predictive.record(now, raw, hor.predictive.history)
            predicted = predict_replicas(
                predictive, now, hor.predictive.lookahead, hor.predictive.history, raw
            )
            if predicted is not None:
                raw, why = predicted
                headline += f"; {why}"
        if failed and raw < current:
            # HPA: with an invalid metric a scale-down is not computed at all (no recommendation
            # recorded), and ScalingActive turns False with the failed metric's reason.
            errors = "; ".join(f"{p.name}: {p.error}" for p in failed)
            headline += f"; scale-down to {raw} blocked because a metric failed ({errors})"
            st = PlanState(state.behavior, failures, predictive, vstate)
            return _hold(hor, current, headline, st, now, common)

    reactive = raw
    if scheduled is not None and raw < scheduled.replicas:
        raw = scheduled.replicas  # remembered by stabilization: the window's end is a normal scale-down
    result = normalize(
        current=current,
        desired=raw,
        min_replicas=hor.min_replicas,
        max_replicas=hor.max_replicas,
        behavior=hor.behavior,
        state=state.behavior,
        now=now,
    )
    limited_by = result.limited_by or result.stabilized_by
    reason = headline
    if limited_by:
        reason += f"; {limited_by}: {result.message} ({raw} -> {result.replicas})"
    if scheduled is not None and reactive <= scheduled.replicas and result.replicas == scheduled.replicas:
        limited_by = SCHEDULED_MINIMUM
        reason = f"{scheduled.describe()} ({headline}; {reactive} -> {result.replicas})"
    unapplied = PlanState(result.state, failures, predictive, vstate)
    applied = replace(
        unapplied, behavior=record_scale(result.state, hor.behavior, now, current, result.replicas)
    )
    return Decision(
        now,
        current,
        result.replicas,
        reason,
        limited_by=limited_by,
        recommended_replicas=raw,
        fallback_active=fallback is not None,
        scaling_active=bool(ok),
        state=applied,
        unapplied_state=unapplied,
        hold_until=result.hold_until,
        **common,
    )


def _hold(
    hor: HorizontalSpec, current: int, why: str, st: PlanState, now: float, common: dict[str, Any]
) -> Decision:
    """Metrics can't justify a change (all failed, or a failed one would be needed to scale down):
    keep the count, only fix it into [min, max] like HPA does before looking at metrics."""
    to = min(max(current, hor.min_replicas), hor.max_replicas)
    limited_by = "TooFewReplicas" if to > current else "TooManyReplicas" if to < current else ""
    applied = st
    if to != current:
        applied = replace(st, behavior=record_scale(st.behavior, hor.behavior, now, current, to))
    return Decision(
        now,
        current,
        to,
        f"{why}: keeping {to} replicas",
        limited_by=limited_by,
        scaling_active=False,
        state=applied,
        unapplied_state=st,
        **common,
    )
