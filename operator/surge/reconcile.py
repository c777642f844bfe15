"""One tick for one policy: resolve target -> observe -> decide -> actuate -> status and Events.

Nothing here imports kopf: handlers.py calls `reconcile_once` from a per-policy daemon and owns the loop.
All clients arrive through `Dependencies`, so tests swap in real-local or recording parts without patching.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client

from surge.actuation.actuator import ActuationError, Actuator, ContainerResources
from surge.actuation.target import (
    Discovery,
    ResolvedTarget,
    ScaleState,
    TargetError,
    TargetRef,
    read_object,
    read_scale,
)
from surge.api import conditions as cond
from surge.api.spec import MetricType, Mode, PolicySpec, SpecError, UpdateMode, parse_policy_spec
from surge.api.status import LastDecision, build_status, status_patch
from surge.decision.model import (
    BufferReading,
    MetricError,
    Observation,
    PodUsage,
    Reading,
    ScalarReading,
)
from surge.decision.model import (
    ContainerResources as TemplateContainer,
)
from surge.decision.plan import Decision, PlanState, plan
from surge.decision.vertical import ContainerResize
from surge.events import EventRecorder, ObjectRef
from surge.metrics.pods import PodSnapshot, PodSource, parse_pod
from surge.metrics.prometheus import PrometheusSource
from surge.metrics.resource import PodMetricsSource
from surge.metrics.types import MetricUnavailable
from surge.policy_store import GROUP, VERSION, PolicyStore

log = logging.getLogger(__name__)

KIND = "AutoScalePolicy"
PAUSE_ANNOTATION = "autoscaling.surge.dev/paused"
DEFAULT_INTERVAL = 15.0
JITTER = 0.05  # +-5% per tick keeps many policies with one interval from ticking in lockstep


class ConflictFinder(Protocol):
    def __call__(self, namespace: str, ref: TargetRef, policy_uid: str) -> list[str]: ...


def no_conflicts(namespace: str, ref: TargetRef, policy_uid: str) -> list[str]:
    return []


@dataclass
class Dependencies:
    api: client.ApiClient
    discovery: Discovery
    pods: PodSource
    pod_metrics: PodMetricsSource
    prometheus: PrometheusSource
    actuator: Actuator
    events: EventRecorder
    store: PolicyStore
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True, slots=True)
class PolicyObject:
    """The policy as the daemon sees it this tick."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(f"{GROUP}/{VERSION}", KIND, self.namespace, self.name, self.uid)


@dataclass
class PolicyMemory:
    """What one policy's loop keeps between ticks (in memory; see docs/design.md on checkpoints)."""

    state: PlanState = field(default_factory=PlanState)
    parsed: tuple[int, PolicySpec] | None = None
    written_status: dict[str, Any] | None = None
    last_decision: LastDecision | None = None
    last_scale_time: str | None = None
    last_tick: float | None = None


@dataclass(frozen=True, slots=True)
class TickResult:
    next_in: float  # seconds until the next tick
    decision: Decision | None = None
    outcome: str = (
        ""  # short word for logs and the tick histogram: ok | invalid | no-target | conflict | error
    )


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Status:
    """Accumulates conditions for this tick on top of the previous list."""

    def __init__(self, previous: Sequence[Mapping[str, Any]], now_iso: str, generation: int) -> None:
        self.conditions = [dict(c) for c in previous]
        self._now, self._gen = now_iso, generation

    def set(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.conditions = cond.set_condition(
            self.conditions, type_, status, reason, message, self._now, self._gen
        )


async def reconcile_once(
    deps: Dependencies, obj: PolicyObject, memory: PolicyMemory, conflicts_of: ConflictFinder = no_conflicts
) -> TickResult:
    now = deps.clock()
    now_iso = _iso(now)
    previous = memory.written_status if memory.written_status is not None else dict(obj.status)
    st = _Status(previous.get("conditions", []), now_iso, obj.generation)

    spec = _parse(obj, memory)
    if isinstance(spec, SpecError):
        st.set(cond.READY, False, "InvalidSpec", str(spec))
        await deps.events.warning(obj.ref, "InvalidSpec", str(spec))
        await _write(
            deps, obj, memory, {**previous, "observedGeneration": obj.generation, "conditions": st.conditions}
        )
        return TickResult(DEFAULT_INTERVAL, outcome="invalid")
    interval = spec.interval * (1 + deps.rng.uniform(-JITTER, JITTER))

    ref = TargetRef(
        spec.scale_target_ref.api_version,
        spec.scale_target_ref.kind,
        spec.scale_target_ref.name,
        obj.namespace,
    )
    try:
        target = await asyncio.to_thread(deps.discovery.resolve, ref)
        scale = await asyncio.to_thread(read_scale, deps.api, target)
    except TargetError as exc:
        for type_ in (cond.ABLE_TO_SCALE, cond.READY):
            st.set(type_, False, exc.reason, exc.message)
        await deps.events.warning(obj.ref, exc.reason, exc.message)
        await _write(
            deps, obj, memory, {**previous, "observedGeneration": obj.generation, "conditions": st.conditions}
        )
        return TickResult(interval, outcome="no-target")

    conflicts = conflicts_of(obj.namespace, ref, obj.uid)
    if conflicts:
        message = "; ".join(conflicts) + ": this policy takes no action until the conflict is resolved"
        st.set(cond.CONFLICT, True, "ConflictingAutoscaler", message)
        st.set(cond.READY, False, "ConflictingAutoscaler", message)
        await deps.events.warning(obj.ref, "ConflictingAutoscaler", message)
        status = {**previous, "observedGeneration": obj.generation, "currentReplicas": scale.spec_replicas}
        await _write(deps, obj, memory, {**status, "conditions": st.conditions})
        return TickResult(interval, outcome="conflict")

    pods, obs = await _observe(deps, spec, target, scale)
    decision = plan(spec, obs, memory.state, now)
    paused = obj.annotations.get(PAUSE_ANNOTATION, "").lower() == "true"
    applied, failures = await _actuate(
        deps, obj, spec, target, decision, pods, memory, dry=spec.mode is Mode.DRY_RUN or paused
    )
    memory.state = decision.state if applied else decision.unapplied_state
    memory.last_tick = now
    for proposal in decision.proposals:
        if not proposal.ok:  # deduplicated by the recorder: one Event per distinct error, not per tick
            reason = (
                "FailedGetResourceMetric"
                if proposal.type is MetricType.RESOURCE
                else "FailedGetPrometheusMetric"
            )
            await deps.events.warning(obj.ref, reason, f"{proposal.name}: {proposal.error}")

    for update in decision.conditions():
        st.set(update.type, update.status, update.reason, update.message)
    if failures:
        st.set(cond.ABLE_TO_SCALE, False, failures[0][0], failures[0][1])
    if paused:
        st.set(
            cond.READY,
            False,
            "Paused",
            f"annotation {PAUSE_ANNOTATION}=true: decisions are reported, not applied",
        )
    elif spec.mode is Mode.DRY_RUN:
        st.set(cond.READY, True, "DryRun", "mode DryRun: decisions are reported, never applied")
    elif failures:
        st.set(cond.READY, False, failures[0][0], failures[0][1])
    else:
        st.set(cond.READY, True, "Reconciled", "the policy is being applied")

    if applied and decision.scale_changed:
        memory.last_scale_time = now_iso
    last = decision.last_decision(now_iso)
    if memory.last_decision is None or _decision_key(memory.last_decision) != _decision_key(last):
        memory.last_decision = last
    status = build_status(
        observed_generation=obj.generation,
        current_replicas=scale.spec_replicas,
        desired_replicas=decision.to_replicas,
        last_scale_time=memory.last_scale_time or previous.get("lastScaleTime"),
        current_metrics=decision.metric_statuses(),
        recommendations=decision.recommendation_statuses() if spec.vertical else None,
        last_decision=memory.last_decision,
        consecutive_failures=memory.state.consecutive_failures,
        conditions=st.conditions,
    )
    await _write(deps, obj, memory, status)
    return TickResult(interval, decision, "error" if failures else "ok")


def _decision_key(d: LastDecision) -> tuple[int, int, str, str]:
    return (d.from_replicas, d.to_replicas, d.reason, d.limited_by)


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


async def _observe(
    deps: Dependencies, spec: PolicySpec, target: ResolvedTarget, scale: ScaleState
) -> tuple[list[PodSnapshot], Observation]:
    metrics = spec.horizontal.metrics if spec.horizontal else ()
    needs_pods = spec.vertical is not None or any(m.type is MetricType.RESOURCE for m in metrics)
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

    async def usage() -> Mapping[str, PodUsage] | MetricError | None:
        if not needs_pods:
            return None
        try:
            return await deps.pod_metrics.pod_usage(ns, scale.selector, max_age, stale_ok=max_age)
        except MetricUnavailable as exc:
            return MetricError(exc.message)

    async def query(q: str, server: str | None) -> float | MetricError:
        try:
            return (await deps.prometheus.query(q, server)).value
        except MetricUnavailable as exc:
            return MetricError(exc.message)

    async def reading(name: str, metric: Any) -> tuple[str, Reading]:
        if metric.type is MetricType.PROMETHEUS:
            value = await query(metric.prometheus.query, metric.prometheus.server_address)
            return name, value if isinstance(value, MetricError) else ScalarReading(value)
        buf = metric.buffer
        used, capacity = await asyncio.gather(
            query(buf.used_query, None), query(buf.capacity_query, None) if buf.capacity_query else _none()
        )
        if isinstance(used, MetricError):
            return name, used
        if isinstance(capacity, MetricError):
            return name, capacity
        return name, BufferReading(used=used, capacity_per_replica=capacity)

    external = [reading(m.name, m) for m in metrics if m.type in (MetricType.PROMETHEUS, MetricType.BUFFER)]
    pod_list, pod_usage, template = await asyncio.gather(
        pods(), usage(), _template_containers(deps, spec, target)
    )
    readings = await asyncio.gather(*external)
    snapshots = pod_list if isinstance(pod_list, list) else []
    if isinstance(pod_list, MetricError) and not isinstance(pod_usage, MetricError):
        pod_usage = pod_list  # without pods the usage cannot be interpreted
    containers = template or (snapshots[0].containers if snapshots else ())
    obs = Observation(
        current_replicas=scale.spec_replicas,
        pods=[p.info for p in snapshots],
        pod_metrics=pod_usage,
        readings=dict(readings),
        containers=containers,
        ooms=[o for p in snapshots for o in p.ooms],
        ready_replicas=None if needs_pods else scale.status_replicas,
    )
    return snapshots, obs


async def _none() -> None:
    return None


async def _template_containers(
    deps: Dependencies, spec: PolicySpec, target: ResolvedTarget
) -> tuple[TemplateContainer, ...]:
    """Current requests/limits from the target's pod template (vertical only; any kind with spec.template)."""
    if spec.vertical is None:
        return ()
    try:
        obj = await asyncio.to_thread(read_object, deps.api, target)
    except Exception:  # the pods' own containers are the fallback
        return ()
    template = {
        "metadata": {"name": "template"},
        "spec": obj.get("spec", {}).get("template", {}).get("spec", {}),
    }
    return parse_pod(template).containers


def _resources(resize: ContainerResize) -> ContainerResources:
    body = resize.to_dict()
    return {body["name"]: {k: v for k, v in body["resources"].items() if v}}


def _needs_resize(pod: PodSnapshot, resize: ContainerResize) -> bool:
    current = next((c for c in pod.containers if c.name == resize.container), None)
    return current is not None and (
        current.requests != resize.new_requests or current.limits != resize.new_limits
    )


async def _actuate(
    deps: Dependencies,
    obj: PolicyObject,
    spec: PolicySpec,
    target: ResolvedTarget,
    decision: Decision,
    pods: Sequence[PodSnapshot],
    memory: PolicyMemory,
    *,
    dry: bool,
) -> tuple[bool, list[tuple[str, str]]]:
    """Carries the decision out (vertical first, then horizontal). Returns (scale applied, failures)."""
    if dry:
        if decision.scale_changed:
            await deps.events.normal(
                obj.ref,
                "DryRunRescale",
                f"would scale from {decision.from_replicas} to {decision.to_replicas}: {decision.reason}",
            )
        return False, []
    failures: list[tuple[str, str]] = []
    mode = spec.vertical.update_mode if spec.vertical else UpdateMode.OFF
    resized = 0
    for resize in decision.resizes:
        resources = _resources(resize)
        if mode in (UpdateMode.RECREATE,):
            try:
                await deps.actuator.patch_template(target, resources)
                resized += 1
            except ActuationError as exc:
                failures.append((exc.reason, exc.message))
            continue
        # InPlace modes resize running pods through /resize and leave the template alone (patching it
        # would roll every pod); pods created later get resized on their first tick. Initial only
        # touches pods created since the previous tick.
        for pod in pods:
            if pod.info.deleting or not _needs_resize(pod, resize):
                continue
            if mode is UpdateMode.INITIAL and memory.last_tick is not None and pod.created < memory.last_tick:
                continue
            try:
                await deps.actuator.resize_pod(obj.namespace, pod.info.name, resources)
                resized += 1
            except ActuationError as exc:
                if mode is UpdateMode.IN_PLACE_OR_RECREATE:
                    try:
                        await deps.actuator.patch_template(target, resources)
                        resized += 1
                        break
                    except ActuationError as exc2:
                        failures.append((exc2.reason, exc2.message))
                        break
                failures.append((exc.reason, exc.message))
    if resized:
        text = ", ".join(f"{r.container}: {r.reason}" for r in decision.resizes)
        await deps.events.normal(obj.ref, "SuccessfulResize", f"resized {resized} pod(s)/template(s); {text}")
    for reason, message in failures:
        await deps.events.warning(obj.ref, reason, message)

    if not decision.scale_changed:
        return True, failures
    try:
        await deps.actuator.set_replicas(target, decision.to_replicas)
    except ActuationError as exc:
        failures.append((exc.reason, exc.message))
        await deps.events.warning(obj.ref, exc.reason, exc.message)
        return False, failures
    await deps.events.normal(
        obj.ref, "SuccessfulRescale", f"New size: {decision.to_replicas}; reason: {decision.reason}"
    )
    return True, failures


async def _write(deps: Dependencies, obj: PolicyObject, memory: PolicyMemory, status: dict[str, Any]) -> None:
    """Writes status only when it differs from what was last written (or read)."""
    previous = memory.written_status if memory.written_status is not None else obj.status
    patch = status_patch(previous, status)
    if patch is None:
        return
    try:
        await deps.store.patch_status(obj.namespace, obj.name, patch)
        memory.written_status = status
    except Exception as exc:  # a lost status write is retried on the next tick
        log.warning("status write for %s/%s failed: %s", obj.namespace, obj.name, exc)
