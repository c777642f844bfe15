"""In-memory fakes of the ports a tick talks to (surge.ports), and a World that wires them together.

Each fake behaves like the real collaborator in the ways a tick can observe: the Scale carries a
resourceVersion and refuses stale writes with 409, the status store applies merge patches under a
resourceVersion precondition, listings go through the real SharedLister. Failures are scripted per fake.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from surge.actuation.actuator import ActuationError
from surge.actuation.scale import ScaleConflict
from surge.actuation.target import ResolvedTarget, ScaleState, TargetError, TargetRef
from surge.decision.actuation_plan import Resources
from surge.decision.model import PodUsage
from surge.events import ObjectRef
from surge.metrics.pods import PodSnapshot, parse_pod
from surge.metrics.registry import build_registry
from surge.metrics.shared import SharedLister
from surge.metrics.types import MetricUnavailable, Sample
from surge.policy_store import PolicyGone, StatusConflict
from surge.reconcile import Dependencies, PolicyObject

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_pod(
    name: str,
    *,
    cpu: str = "1",
    memory: str = "512Mi",
    created: float = NOW - 3600,
    ready: bool = True,
    phase: str = "Running",
    deleting: bool = False,
    labels: Mapping[str, str] | None = None,
    container: str = "app",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "labels": dict(labels or {"app": "arena"}),
        "creationTimestamp": iso(created),
    }
    if deleting:
        meta["deletionTimestamp"] = iso(created + 1)
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": container, "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
        },
        "status": {
            "phase": phase,
            "startTime": iso(created),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": iso(created + 10),
                }
            ],
        },
    }


@dataclass
class FakeScale:
    """One target's /scale. `conflicts`: values another writer sets just before our next writes (409)."""

    replicas: int = 5
    selector: str = "app=arena"
    exists: bool = True
    resource_version: int = 1
    conflicts: list[int] = field(default_factory=list)
    write_error: Exception | None = None
    read_error: BaseException | None = None
    writes: list[tuple[int, str]] = field(default_factory=list)  # (replicas, precondition) attempted
    reads: int = 0

    async def resolve(self, ref: TargetRef) -> ResolvedTarget:
        if ref.kind not in ("Deployment", "StatefulSet"):
            raise TargetError("FailedGetScale", f"{ref.api_version} has no namespaced kind {ref.kind}")
        return ResolvedTarget(ref, f"/apis/apps/v1/namespaces/{ref.namespace}/deployments/{ref.name}")

    async def read(self, target: ResolvedTarget) -> ScaleState:
        self.reads += 1
        if self.read_error is not None:
            raise self.read_error
        if not self.exists:
            raise TargetError("FailedGetScale", f"{target.ref} not found in {target.ref.namespace}")
        return ScaleState(self.replicas, self.replicas, self.selector, str(self.resource_version))

    async def write(self, target: ResolvedTarget, replicas: int, resource_version: str) -> None:
        self.writes.append((replicas, resource_version))
        if self.conflicts:  # someone else scales first
            self.replicas = self.conflicts.pop(0)
            self.resource_version += 1
        if self.write_error is not None:
            raise self.write_error
        if resource_version and resource_version != str(self.resource_version):
            raise ScaleConflict("FailedRescale", f"{target.ref}/scale changed since it was read (409)")
        self.replicas = replicas
        self.resource_version += 1


class FakePods:
    """A namespace's pods behind the real SharedLister; `gate` holds every LIST until it is set."""

    def __init__(self, pods: list[dict[str, Any]] | None = None) -> None:
        self.raw = list(pods or [])
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.lists = 0
        self._shared: SharedLister[list[PodSnapshot]] = SharedLister(self._list, clock=lambda: 0.0)

    async def _list(self, namespace: str) -> list[PodSnapshot]:
        self.lists += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return [parse_pod(p) for p in self.raw]

    async def pods(
        self, namespace: str, selector: str, max_age: float = 0.0, stale_ok: float = 0.0
    ) -> list[PodSnapshot]:
        self._shared.forget(namespace)  # each tick lists again unless one is in flight
        return await self._shared.get(namespace, max_age, stale_ok)


@dataclass
class FakePodMetrics:
    usage: dict[str, PodUsage] = field(default_factory=dict)
    error: Exception | None = None

    async def pod_usage(
        self, namespace: str, selector: str, max_age: float = 0.0, stale_ok: float = 0.0
    ) -> dict[str, PodUsage]:
        if self.error is not None:
            raise self.error
        return dict(self.usage)


@dataclass
class FakePrometheus:
    """Answers by query text: a number, or an exception to raise."""

    answers: dict[str, float | Exception] = field(default_factory=dict)
    by_pod: dict[str, dict[str, float] | Exception] = field(default_factory=dict)
    at: float = NOW

    async def query(self, query: str, server: str | None = None, namespace: str | None = None) -> Sample:
        answer = self.answers.get(query)
        if answer is None:
            raise MetricUnavailable("FailedGetPrometheusMetric", f"query returned no data: {query}")
        if isinstance(answer, Exception):
            raise answer
        return Sample(answer, self.at)

    async def query_by_pod(
        self, query: str, server: str | None = None, namespace: str | None = None
    ) -> dict[str, Sample]:
        answer = self.by_pod.get(query)
        if answer is None:
            raise MetricUnavailable("FailedGetPrometheusMetric", f"query returned no data: {query}")
        if isinstance(answer, Exception):
            raise answer
        return {pod: Sample(v, self.at) for pod, v in answer.items()}


@dataclass
class FakeActuator:
    refuse_resize: bool = False
    refuse_template: bool = False
    resizes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)

    async def resize_pod(self, namespace: str, pod: str, resources: Resources) -> None:
        if self.refuse_resize:
            raise ActuationError("FailedResize", f"resizing pod {pod} failed: 422 infeasible")
        self.resizes.append((pod, _plain(resources)))

    async def patch_template(self, target: ResolvedTarget, resources: Resources) -> None:
        if self.refuse_template:
            raise ActuationError("FailedUpdateTemplate", f"patching {target.ref} template failed: 403")
        self.templates.append(_plain(resources))


def _plain(resources: Resources) -> dict[str, Any]:
    return {name: {kind: dict(values) for kind, values in res.items()} for name, res in resources.items()}


@dataclass
class FakeTemplates:
    spec: dict[str, Any] = field(default_factory=dict)

    async def pod_template_spec(self, target: ResolvedTarget) -> dict[str, Any]:
        return dict(self.spec)


@dataclass
class FakeStatus:
    """The policy's status under a resourceVersion; `fail` scripts the next answers: 409, 404 or 500."""

    status: dict[str, Any] = field(default_factory=dict)
    resource_version: int = 10
    fail: list[int] = field(default_factory=list)
    writes: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (patch, precondition) applied

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str = ""
    ) -> str:
        if self.fail:
            code = self.fail.pop(0)
            if code == 409:
                raise StatusConflict(f"{namespace}/{name} changed since it was read")
            if code == 404:
                raise PolicyGone(f"{namespace}/{name} no longer exists")
            raise RuntimeError(f"HTTP {code}")
        if resource_version and resource_version != str(self.resource_version):
            raise StatusConflict(f"{namespace}/{name} changed since it was read")
        self.status = _merge(self.status, patch)
        self.resource_version += 1
        self.writes.append((patch, resource_version))
        return str(self.resource_version)


def _merge(old: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class FakeEvents:
    fail: bool = False
    posted: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)

    async def emit(
        self, obj: ObjectRef, type_: str, reason: str, message: str, *, scale: tuple[int, int] | None = None
    ) -> bool:
        if self.fail:
            raise RuntimeError("events API unavailable")
        self.posted.append((type_, reason, message))
        return True

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.posted]


@dataclass
class World:
    """A target, its pods and metrics, and the policy's status: everything a tick can see."""

    clock: Clock = field(default_factory=Clock)
    scale: FakeScale = field(default_factory=FakeScale)
    pods: FakePods = field(default_factory=FakePods)
    pod_metrics: FakePodMetrics = field(default_factory=FakePodMetrics)
    prometheus: FakePrometheus = field(default_factory=FakePrometheus)
    actuator: FakeActuator = field(default_factory=FakeActuator)
    templates: FakeTemplates = field(default_factory=FakeTemplates)
    status: FakeStatus = field(default_factory=FakeStatus)
    events: FakeEvents = field(default_factory=FakeEvents)

    def deps(self) -> Dependencies:
        return Dependencies(
            api=client.ApiClient(),  # never used by a tick
            scale=self.scale,
            pods=self.pods,
            pod_metrics=self.pod_metrics,
            metrics=build_registry(self.prometheus),
            actuator=self.actuator,
            templates=self.templates,
            status=self.status,
            events=self.events,
            clock=self.clock,
            rng=random.Random(0),
        )

    def policy(
        self,
        spec: Mapping[str, Any],
        *,
        name: str = "arena",
        annotations: Mapping[str, str] | None = None,
        generation: int = 1,
    ) -> PolicyObject:
        return PolicyObject(
            namespace="games",
            name=name,
            uid=f"uid-{name}",
            generation=generation,
            spec=dict(spec),
            status=dict(self.status.status),
            annotations=dict(annotations or {}),
            resource_version=str(self.status.resource_version),
        )


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions", []) if c["type"] == type_]
    assert found, f"no {type_} condition in {status.get('conditions')}"
    return dict(found[0])
