"""The collaborators of one tick, each behind a small Protocol.

`reconcile_once` talks only to these; `surge.wiring` builds the real ones (the API server through
`surge.kube.request` in worker threads, Prometheus over HTTP), tests pass in-memory fakes.
Every method that can fail raises a documented error type, which reconcile turns into a condition and an
Event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from surge.actuation.target import ResolvedTarget, ScaleState, TargetRef
from surge.decision.actuation_plan import Resources
from surge.decision.model import PodUsage
from surge.events import ObjectRef
from surge.metrics.pods import PodSnapshot
from surge.metrics.sources.base import MetricSource, Needs, PromQL

__all__ = [
    "Actuator",
    "Clock",
    "EventSink",
    "MetricSource",
    "Needs",
    "PodLister",
    "PodMetricsLister",
    "PromQL",
    "ScaleClient",
    "StatusWriter",
    "TemplateReader",
]

Clock = Callable[[], float]  # seconds since the epoch


class ScaleClient(Protocol):
    """Any workload's /scale subresource (surge.actuation.scale.KubeScaleClient)."""

    async def resolve(self, ref: TargetRef) -> ResolvedTarget:
        """Raises TargetError (reason FailedGetScale) when the kind is unknown or has no /scale."""
        ...

    async def read(self, target: ResolvedTarget) -> ScaleState:
        """Replicas, selector and resourceVersion; raises TargetError."""
        ...

    async def write(self, target: ResolvedTarget, replicas: int, resource_version: str) -> None:
        """Sets replicas if the Scale is still at ``resource_version``.

        Raises ScaleConflict on 409 (re-read and decide again), ActuationError on other refusals.
        """
        ...


class PodLister(Protocol):
    """The target's pods (surge.metrics.pods.PodSource); raises MetricUnavailable."""

    async def pods(
        self, namespace: str, selector: str, max_age: float = 0.0, stale_ok: float = 0.0
    ) -> list[PodSnapshot]: ...


class PodMetricsLister(Protocol):
    """metrics.k8s.io usage by pod name (surge.metrics.resource.PodMetricsSource).

    Raises MetricUnavailable.
    """

    async def pod_usage(
        self, namespace: str, selector: str, max_age: float = 0.0, stale_ok: float = 0.0
    ) -> dict[str, PodUsage]: ...


class Actuator(Protocol):
    """Writes to pods and the pod template (surge.actuation.actuator.KubeActuator); raises ActuationError."""

    async def resize_pod(self, namespace: str, pod: str, resources: Resources) -> None: ...

    async def patch_template(self, target: ResolvedTarget, resources: Resources) -> None: ...


class TemplateReader(Protocol):
    """The target's ``spec.template.spec`` (surge.actuation.target.KubeTemplateReader)."""

    async def pod_template_spec(self, target: ResolvedTarget) -> dict[str, Any]: ...


class StatusWriter(Protocol):
    """The policy's /status (surge.policy_store.PolicyStore)."""

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str = ""
    ) -> str:
        """Merge-patches status if the policy is still at ``resource_version``; returns the new one.

        Raises StatusConflict (409: skip this write), PolicyGone (404).
        """
        ...


class EventSink(Protocol):
    """core/v1 Events about the policy (surge.events.EventRecorder), deduplicated there."""

    async def emit(
        self,
        obj: ObjectRef,
        type_: str,
        reason: str,
        message: str,
        *,
        scale: tuple[int, int] | None = None,
    ) -> bool: ...
