"""One tick for one policy: resolve target -> observe -> decide -> actuate -> status and Events.

Nothing here imports kopf or a client: every collaborator arrives through `Dependencies` as a port
(surge.ports), so tests drive a whole tick with in-memory fakes. The decisions are pure functions
(`decision.plan`, `decision.actuation_plan`); this module only fetches, executes and reports.

No exception escapes a tick except cancellation: an unexpected failure becomes outcome "error" with a
short back-off, a Ready=False condition, an Event and one log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client

from surge.actuation.scale import ScaleConflict
from surge.actuation.target import ResolvedTarget, ScaleState, TargetError, TargetRef
from surge.api import conditions as cond
from surge.api import reasons
from surge.api.spec import (
    MetricSpec,
    MetricType,
    Mode,
    PodsMetricSpec,
    PolicySpec,
    SpecError,
    UpdateMode,
    parse_policy_spec,
)
from surge.api.status import MAX_TEXT, LastDecision, build_status, clip, status_patch
from surge.decision.actuation_plan import ActuationPlan, PodView, plan_actuation
from surge.decision.model import ContainerResources as TemplateContainer
from surge.decision.model import EngineSettings, MetricError, Observation, PodUsage, Reading
from surge.decision.plan import Decision, PlanState, plan
from surge.events import ObjectRef
from surge.metrics.pods import PodSnapshot, parse_pod
from surge.metrics.sources.base import MetricSource
from surge.metrics.types import MetricUnavailable
from surge.policy_store import GROUP, VERSION, PolicyGone, StatusConflict
from surge.ports import (
    Actuator,
    Clock,
    EventSink,
    PodLister,
    PodMetricsLister,
    ScaleClient,
    StatusWriter,
    TemplateReader,
)

log = logging.getLogger(__name__)

KIND = "AutoScalePolicy"
PAUSE_ANNOTATION = "autoscaling.surge.dev/paused"
DEFAULT_INTERVAL = 15.0
JITTER = 0.05  # +-5% per tick keeps many policies with one interval from ticking in lockstep
ERROR_BACKOFF = 1.0  # first retry after an unexpected failure; doubles per failure, capped at the interval


class ConflictFinder(Protocol):
    def __call__(self, namespace: str, ref: TargetRef, policy_uid: str) -> list[str]: ...


def no_conflicts(namespace: str, ref: TargetRef, policy_uid: str) -> list[str]:
    return []


@dataclass
class Dependencies:
    api: client.ApiClient  # the raw client, for the supervisor's own needs; a tick never uses it
    scale: ScaleClient
    pods: PodLister
    pod_metrics: PodMetricsLister
    metrics: Mapping[MetricType, MetricSource]  # surge.metrics.registry.build_registry
    actuator: Actuator
    templates: TemplateReader
    status: StatusWriter
    events: EventSink
    settings: EngineSettings = field(default_factory=EngineSettings)
    clock: Clock = time.time
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True, slots=True)
class PolicyObject:
    """The policy as the loop sees it this tick."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    resource_version: str = ""  # status writes carry it as a precondition

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(f"{GROUP}/{VERSION}", KIND, self.namespace, self.name, self.uid)


@dataclass
class PolicyMemory:
    """What one policy's loop keeps between ticks (``state`` and ``last_tick`` are checkpointed)."""

    state: PlanState = field(default_factory=PlanState)
    parsed: tuple[int, PolicySpec] | None = None
    written_status: dict[str, Any] | None = None
    last_decision: LastDecision | None = None
    last_scale_time: str | None = None
    last_tick: float | None = None  # None: no history (Initial mode then resizes no existing pod)
    consecutive_errors: int = 0
    # Our own status writes move the resourceVersion before the watch shows it: while the object we are
    # given is still at `status_rv_base`, the precondition for the next write is `status_rv`.
    status_rv_base: str = ""
    status_rv: str = ""


@dataclass(frozen=True, slots=True)
class TickResult:
    next_in: float  # seconds until the next tick
    decision: Decision | None = None
    outcome: str = ""  # ok | invalid | no-target | conflict | error | gone
    scaled: bool = False  # a scale write happened this tick


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Status:
    """Accumulates conditions for this tick on top of the previous list."""

    def __init__(self, previous: Sequence[Mapping[str, Any]], now_iso: str, generation: int) -> None:
        self.conditions = [dict(c) for c in previous if isinstance(c, Mapping)]
        self._now, self._gen = now_iso, generation

    def set(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.conditions = cond.set_condition(
            self.conditions, type_, status, reason, message, self._now, self._gen
        )


@dataclass
class _Tick:
    """This tick's context, so helpers do not take ten arguments."""

    deps: Dependencies
    obj: PolicyObject
    memory: PolicyMemory
    now: float
    previous: Mapping[str, Any]
    st: _Status

    async def event(
        self, type_: str, reason: str, message: str, *, scale: tuple[int, int] | None = None
    ) -> None:
        try:
            await self.deps.events.emit(self.obj.ref, type_, reason, message, scale=scale)
        except Exception as exc:  # Events are best effort: never fail a tick because of one
            log.warning("event %s for %s/%s not posted: %s", reason, self.obj.namespace, self.obj.name, exc)

    async def warn(self, reason: str, message: str) -> None:
        await self.event("Warning", reason, message)

    def base_status(self, **fields: Any) -> dict[str, Any]:
        return {
            **self.previous,
            "observedGeneration": self.obj.generation,
            **fields,
            "conditions": self.st.conditions,
        }


def _new_tick(deps: Dependencies, obj: PolicyObject, memory: PolicyMemory) -> _Tick:
    now = deps.clock()
    previous = memory.written_status if memory.written_status is not None else dict(obj.status)
    conditions = previous.get("conditions")
    st = _Status(conditions if isinstance(conditions, list) else [], _iso(now), obj.generation)
    return _Tick(deps, obj, memory, now, previous, st)


async def reconcile_once(
    deps: Dependencies, obj: PolicyObject, memory: PolicyMemory, conflicts_of: ConflictFinder = no_conflicts
) -> TickResult:
    try:
        result = await _reconcile(deps, obj, memory, conflicts_of)
    except PolicyGone:
        return TickResult(0.0, outcome="gone")
    except Exception as exc:  # CancelledError is not an Exception: cancellation still ends the loop
        return await _failed(deps, obj, memory, exc)
    if result.outcome == "error":
        memory.consecutive_errors += 1
        return replace(result, next_in=_backoff(memory, result.next_in))
    memory.consecutive_errors = 0
    return result


def _backoff(memory: PolicyMemory, interval: float) -> float:
    return float(min(interval, ERROR_BACKOFF * 2 ** min(memory.consecutive_errors - 1, 16)))


def _interval_of(memory: PolicyMemory) -> float:
    return memory.parsed[1].interval if memory.parsed is not None else DEFAULT_INTERVAL


async def _failed(deps: Dependencies, obj: PolicyObject, memory: PolicyMemory, exc: Exception) -> TickResult:
    """An unexpected failure: one log line, a condition and an Event, a short back-off."""
    memory.consecutive_errors += 1
    next_in = _backoff(memory, _interval_of(memory))
    message = clip(f"the tick failed: {type(exc).__name__}: {exc}", MAX_TEXT)
    log.warning(
        "tick of %s/%s failed (%d in a row, retry in %.0fs): %s",
        obj.namespace,
        obj.name,
        memory.consecutive_errors,
        next_in,
        message,
    )
    try:
        now = deps.clock()
        previous = memory.written_status if memory.written_status is not None else dict(obj.status)
        tick = _Tick(
            deps,
            obj,
            memory,
            now,
            previous,
            _Status(previous.get("conditions") or [], _iso(now), obj.generation),
        )
        tick.st.set(cond.READY, False, reasons.INTERNAL_ERROR, message)
        await tick.warn(reasons.INTERNAL_ERROR, message)
        await _write(tick, tick.base_status())
    except PolicyGone:
        return TickResult(0.0, outcome="gone")
    except Exception as again:  # already reported in the line above; do not loop on the report
        log.debug("reporting the failure of %s/%s failed too: %s", obj.namespace, obj.name, again)
    return TickResult(next_in, outcome="error")


async def _reconcile(
    deps: Dependencies, obj: PolicyObject, memory: PolicyMemory, conflicts_of: ConflictFinder
) -> TickResult:
    now = deps.clock()
    previous = memory.written_status if memory.written_status is not None else dict(obj.status)
    tick = _Tick(
        deps, obj, memory, now, previous, _Status(previous.get("conditions") or [], _iso(now), obj.generation)
    )
    st = tick.st

    spec = _parse(obj, memory)
    if isinstance(spec, SpecError):
        st.set(cond.READY, False, reasons.INVALID_SPEC, str(spec))
        await tick.warn(reasons.INVALID_SPEC, str(spec))
        await _write(tick, tick.base_status())
        return TickResult(DEFAULT_INTERVAL, outcome="invalid")
    interval = spec.interval * (1 + deps.rng.uniform(-JITTER, JITTER))

    ref = TargetRef(
        spec.scale_target_ref.api_version,
        spec.scale_target_ref.kind,
        spec.scale_target_ref.name,
        obj.namespace,
    )
    try:
        target = await deps.scale.resolve(ref)
        scale = await deps.scale.read(target)
    except TargetError as exc:
        for type_ in (cond.ABLE_TO_SCALE, cond.READY):
            st.set(type_, False, exc.reason, exc.message)
        await tick.warn(exc.reason, exc.message)
        await _write(tick, tick.base_status())
        return TickResult(interval, outcome="no-target")

    conflicts = conflicts_of(obj.namespace, ref, obj.uid)
    if conflicts:
        message = "; ".join(conflicts) + ": this policy takes no action until the conflict is resolved"
        st.set(cond.CONFLICT, True, reasons.CONFLICTING_AUTOSCALER, message)
        st.set(cond.READY, False, reasons.CONFLICTING_AUTOSCALER, message)
        await tick.warn(reasons.CONFLICTING_AUTOSCALER, message)
        await _write(tick, tick.base_status(currentReplicas=scale.spec_replicas))
        return TickResult(interval, outcome="conflict")

    pods, obs = await _observe(deps, spec, target, scale)
    decision = plan(spec, obs, memory.state, now, deps.settings)
    paused = obj.annotations.get(PAUSE_ANNOTATION, "").lower() == "true"
    dry = spec.mode is Mode.DRY_RUN or paused
    actions = plan_actuation(
        from_replicas=decision.from_replicas,
        to_replicas=decision.to_replicas,
        resizes=decision.resizes,
        update_mode=spec.vertical.update_mode if spec.vertical else UpdateMode.OFF,
        pods=[_pod_view(p) for p in pods],
        previous_tick=memory.last_tick,
        dry_run=dry,
        estimates=decision.estimates,
        vertical=spec.vertical,
        oom_containers=decision.oom_containers,
    )
    failures = await _resize(tick, target, actions)
    decision, scale_failure, scaled = await _rescale(tick, spec, target, scale, obs, decision, actions)
    if scale_failure is not None:
        failures.append(scale_failure)
    # The decision's state records a scale event only when the write really happened (or none was needed).
    applied = not dry and scale_failure is None and (scaled or not decision.scale_changed)
    memory.state = decision.state if applied else decision.unapplied_state
    memory.last_tick = now
    for proposal in decision.proposals:
        if not proposal.ok:  # deduplicated by the sink: one Event per distinct error, not per tick
            await tick.warn(reasons.failed_metric(proposal.type), f"{proposal.name}: {proposal.error}")

    for update in decision.conditions():
        st.set(update.type, update.status, update.reason, update.message)
    if failures:
        st.set(cond.ABLE_TO_SCALE, False, failures[0][0], failures[0][1])
    if paused:
        st.set(
            cond.READY,
            False,
            reasons.PAUSED,
            f"annotation {PAUSE_ANNOTATION}=true: decisions are reported, not applied",
        )
    elif spec.mode is Mode.DRY_RUN:
        st.set(cond.READY, True, reasons.DRY_RUN, "mode DryRun: decisions are reported, never applied")
    elif failures:
        st.set(cond.READY, False, failures[0][0], failures[0][1])
    else:
        st.set(cond.READY, True, reasons.RECONCILED, "the policy is being applied")

    now_iso = _iso(now)
    if scaled:
        memory.last_scale_time = now_iso
    hold = _iso(decision.hold_until) if decision.hold_until is not None else ""
    last = decision.last_decision(now_iso, hold)
    if memory.last_decision is None or _decision_key(memory.last_decision) != _decision_key(last):
        memory.last_decision = last
    status = build_status(
        observed_generation=obj.generation,
        current_replicas=decision.from_replicas,
        desired_replicas=decision.to_replicas,
        last_scale_time=memory.last_scale_time or previous.get("lastScaleTime"),
        current_metrics=decision.metric_statuses(),
        recommendations=decision.recommendation_statuses() if spec.vertical else None,
        last_decision=memory.last_decision,
        consecutive_failures=memory.state.consecutive_failures,
        conditions=st.conditions,
        # Absent when no schedule floor is in force: the merge patch then removes the key.
        extra={"activeSchedule": decision.active_schedule.to_status()} if decision.active_schedule else None,
    )
    await _write(tick, status)
    if not failures and not applied and not dry:
        return TickResult(min(interval, 1.0), decision, "ok", scaled)  # conflicted twice: decide again soon
    return TickResult(interval, decision, "error" if failures else "ok", scaled)


def _decision_key(d: LastDecision) -> tuple[int, int, str, str, str]:
    return (d.from_replicas, d.to_replicas, d.reason, d.limited_by, d.hold_until)


def _parse(obj: PolicyObject, memory: PolicyMemory) -> PolicySpec | SpecError:
    if memory.parsed is not None and memory.parsed[0] == obj.generation:
        return memory.parsed[1]
    try:
        spec = parse_policy_spec(obj.spec)
    except SpecError as exc:
        return exc
    if memory.parsed is not None and memory.parsed[1].scale_target_ref != spec.scale_target_ref:
        memory.state = PlanState()  # history of another target means nothing here
    memory.parsed = (obj.generation, spec)
    return spec


# --- observe ----------------------------------------------------------------------------------------


async def _observe(
    deps: Dependencies, spec: PolicySpec, target: ResolvedTarget, scale: ScaleState
) -> tuple[list[PodSnapshot], Observation]:
    metrics = spec.horizontal.metrics if spec.horizontal else ()
    sources = [(m, deps.metrics.get(m.type)) for m in metrics]
    vertical = spec.vertical is not None
    needs_pods = vertical or any(s is not None and s.needs.pods for _, s in sources)
    needs_usage = vertical or any(s is not None and s.needs.pod_metrics for _, s in sources)
    ns = target.ref.namespace
    # Policies in one namespace share pod and PodMetrics LISTs no older than half their interval; up to as
    # much again while the next LIST is fetched in the background, so no tick waits for a LIST.
    max_age = min(5.0, spec.interval / 2)

    async def pods() -> list[PodSnapshot] | MetricError:
        if not needs_pods:
            return []
        try:
            return await deps.pods.pods(ns, scale.selector, max_age, stale_ok=max_age)
        except MetricUnavailable as exc:
            return MetricError(exc.message)
        except Exception as exc:  # an answer we could not read is a failed metric, not a failed tick
            return MetricError(f"listing pods failed: {type(exc).__name__}: {exc}")

    async def usage() -> Mapping[str, PodUsage] | MetricError | None:
        if not needs_usage:
            return None
        try:
            return await deps.pod_metrics.pod_usage(ns, scale.selector, max_age, stale_ok=max_age)
        except MetricUnavailable as exc:
            return MetricError(exc.message)
        except Exception as exc:
            return MetricError(f"reading pod metrics failed: {type(exc).__name__}: {exc}")

    async def readings() -> dict[str, Reading]:
        got = await asyncio.gather(*(_read(m, s, ns) for m, s in sources))
        return {name: r for name, r in got if r is not None}

    pod_list, pod_usage, template, by_name = await asyncio.gather(
        pods(), usage(), _template_containers(deps, spec, target), readings()
    )
    snapshots = pod_list if isinstance(pod_list, list) else []
    if isinstance(pod_list, MetricError) and not isinstance(pod_usage, MetricError):
        pod_usage = pod_list  # without pods the usage cannot be interpreted
    if isinstance(pod_list, MetricError):
        # A per-pod metric without the pod list cannot apply HPA's missing/unready rules either.
        for metric, _ in sources:
            if isinstance(metric, PodsMetricSpec):
                by_name[metric.name] = pod_list
    containers = template or (snapshots[0].containers if snapshots else ())
    obs = Observation(
        current_replicas=scale.spec_replicas,
        pods=[p.info for p in snapshots],
        pod_metrics=pod_usage,
        readings=by_name,
        containers=containers,
        ooms=[o for p in snapshots for o in p.ooms],
        ready_replicas=None if needs_pods else scale.status_replicas,
    )
    return snapshots, obs


async def _read(
    metric: MetricSpec, source: MetricSource | None, namespace: str
) -> tuple[str, Reading | None]:
    if source is None:
        return metric.name, MetricError(f"no source reads metrics of type {metric.type}")
    try:
        return metric.name, await source.read(metric, namespace)
    except MetricUnavailable as exc:
        return metric.name, MetricError(exc.message)
    except Exception as exc:  # e.g. a query answering a string: this metric failed, the tick goes on
        return metric.name, MetricError(f"unreadable answer: {type(exc).__name__}: {exc}")


async def _template_containers(
    deps: Dependencies, spec: PolicySpec, target: ResolvedTarget
) -> tuple[TemplateContainer, ...]:
    """Current requests/limits from the target's pod template (vertical only; any kind with spec.template)."""
    if spec.vertical is None:
        return ()
    try:
        pod_spec = await deps.templates.pod_template_spec(target)
        return parse_pod({"metadata": {"name": "template"}, "spec": pod_spec}).containers
    except Exception:  # the pods' own containers are the fallback
        return ()


def _pod_view(pod: PodSnapshot) -> PodView:
    return PodView(pod.info.name, pod.created, pod.info.deleting, pod.containers)


# --- act --------------------------------------------------------------------------------------------


async def _resize(tick: _Tick, target: ResolvedTarget, actions: ActuationPlan) -> list[tuple[str, str]]:
    """Carries out the vertical part of the plan: one PATCH per pod, or the template. Returns failures."""
    deps, ns = tick.deps, tick.obj.namespace
    failures: list[tuple[str, str]] = []
    resized = 0
    if actions.template_patch is not None:
        try:
            await deps.actuator.patch_template(target, actions.template_patch)
            resized += 1
        except Exception as exc:
            failures.append(_failure(exc, reasons.FAILED_UPDATE_TEMPLATE))
    for pod in actions.pod_resizes:
        try:
            await deps.actuator.resize_pod(ns, pod.pod, pod.resources)
            resized += 1
        except Exception as exc:
            failures.append(_failure(exc, reasons.FAILED_RESIZE))
            if actions.template_on_refusal is None:
                continue
            # InPlaceOrRecreate: the template carries the new size; its controller replaces the pods.
            try:
                await deps.actuator.patch_template(target, actions.template_on_refusal)
                resized += 1
            except Exception as exc2:
                failures.append(_failure(exc2, reasons.FAILED_UPDATE_TEMPLATE))
            break
    if resized:
        text = "; ".join(actions.resize_reasons)
        await tick.event("Normal", reasons.SUCCESSFUL_RESIZE, f"resized {resized} pod(s)/template(s); {text}")
    for reason, message in failures:
        await tick.warn(reason, message)
    return failures


async def _rescale(
    tick: _Tick,
    spec: PolicySpec,
    target: ResolvedTarget,
    scale: ScaleState,
    obs: Observation,
    decision: Decision,
    actions: ActuationPlan,
) -> tuple[Decision, tuple[str, str] | None, bool]:
    """The /scale write of the plan. On 409 it re-reads /scale and decides again, once.

    Returns the decision that stands, the failure (if any) and whether a write happened.
    """
    if actions.scale_to is None:
        return decision, None, False
    if actions.dry_run:
        await tick.event(
            "Normal",
            reasons.DRY_RUN_RESCALE,
            f"would scale from {decision.from_replicas} to {decision.to_replicas}: {decision.reason}",
            scale=(decision.from_replicas, decision.to_replicas),
        )
        return decision, None, False
    deps = tick.deps
    try:
        await deps.scale.write(target, decision.to_replicas, scale.resource_version)
    except ScaleConflict:
        try:
            scale = await deps.scale.read(target)
        except TargetError as exc:
            return await _rescale_failed(tick, decision, (exc.reason, exc.message))
        ready = None if obs.ready_replicas is None else scale.status_replicas
        obs = replace(obs, current_replicas=scale.spec_replicas, ready_replicas=ready)
        # Resizes are done already; only the count is decided again, on the count the Scale has now.
        decision = plan(spec, obs, tick.memory.state, tick.now, deps.settings)
        if not decision.scale_changed:
            return decision, None, False
        try:
            await deps.scale.write(target, decision.to_replicas, scale.resource_version)
        except ScaleConflict:
            # Someone keeps changing the target (a controller's status updates move a Deployment's
            # resourceVersion too): not a failure a person must act on; decide again on the next tick.
            log.info("%s changed twice during one tick; deciding again next tick", target.ref)
            return decision, None, False
        except Exception as exc:
            return await _rescale_failed(tick, decision, _failure(exc, reasons.FAILED_RESCALE))
    except Exception as exc:
        return await _rescale_failed(tick, decision, _failure(exc, reasons.FAILED_RESCALE))
    log.info("scaled %s from %d to %d", target.ref, decision.from_replicas, decision.to_replicas)
    await tick.event(
        "Normal",
        reasons.SUCCESSFUL_RESCALE,
        f"New size: {decision.to_replicas}; reason: {decision.reason}",
        scale=(decision.from_replicas, decision.to_replicas),
    )
    return decision, None, True


async def _rescale_failed(
    tick: _Tick, decision: Decision, failure: tuple[str, str]
) -> tuple[Decision, tuple[str, str] | None, bool]:
    await tick.warn(*failure)
    return decision, failure, False


def _failure(exc: Exception, default_reason: str) -> tuple[str, str]:
    if isinstance(exc, TargetError):  # ActuationError and ScaleConflict carry their own reason
        return exc.reason, exc.message
    return default_reason, clip(f"{type(exc).__name__}: {exc}", MAX_TEXT)


# --- status -----------------------------------------------------------------------------------------


def _precondition(obj: PolicyObject, memory: PolicyMemory) -> str:
    if obj.resource_version and obj.resource_version == memory.status_rv_base and memory.status_rv:
        return memory.status_rv  # the object we were given predates our own last write
    return obj.resource_version


async def _write(tick: _Tick, status: dict[str, Any]) -> None:
    """Writes status only when it differs from what was last written (or read), never over a newer one."""
    obj, memory = tick.obj, tick.memory
    previous = memory.written_status if memory.written_status is not None else obj.status
    patch = status_patch(previous, status)
    if patch is None:
        return
    try:
        new_rv = await tick.deps.status.patch_status(
            obj.namespace, obj.name, patch, _precondition(obj, memory)
        )
    except StatusConflict:
        # Someone changed the policy since this tick read it: its status may be newer than ours. Skip; the
        # next tick compares against what it then reads.
        memory.written_status = None
        log.debug("status of %s/%s changed meanwhile; write skipped", obj.namespace, obj.name)
        return
    except PolicyGone:
        raise
    except Exception as exc:  # a lost status write is retried on the next tick
        log.warning("status write for %s/%s failed: %s", obj.namespace, obj.name, exc)
        await tick.warn(reasons.FAILED_UPDATE_STATUS, clip(f"writing status failed: {exc}", MAX_TEXT))
        return
    memory.written_status = status
    memory.status_rv_base, memory.status_rv = obj.resource_version, new_rv
