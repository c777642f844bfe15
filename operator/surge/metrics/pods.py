"""The scale target's pods, reduced to what the decision engine reads (readiness, requests, OOM kills)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.quantity import parse_quantity
from surge.api.spec import ResourceAmounts
from surge.decision.model import ContainerResources, OOMEvent, PodInfo
from surge.kube import request
from surge.metrics.label_index import LabelIndex
from surge.metrics.selector import SelectorError, parse_selector
from surge.metrics.shared import SharedLister
from surge.metrics.timeparse import rfc3339_to_unix
from surge.metrics.types import MetricUnavailable


@dataclass(frozen=True, slots=True)
class PodSnapshot:
    """One pod as seen this tick: the engine's view plus what actuation needs (uid, live resources)."""

    info: PodInfo
    uid: str
    labels: Mapping[str, str]
    created: float
    containers: tuple[ContainerResources, ...]
    ooms: tuple[OOMEvent, ...]


def _amounts(values: Mapping[str, Any] | None) -> ResourceAmounts:
    values = values or {}
    cpu, memory = values.get("cpu"), values.get("memory")
    return ResourceAmounts(
        cpu=float(parse_quantity(cpu)) if cpu is not None else None,
        memory=float(parse_quantity(memory)) if memory is not None else None,
    )


def _maybe_time(value: str | None) -> float | None:
    return rfc3339_to_unix(value) if value else None


def parse_pod(pod: Mapping[str, Any]) -> PodSnapshot:
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    ready_cond = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
    containers = tuple(
        ContainerResources(
            name=c["name"],
            requests=_amounts((c.get("resources") or {}).get("requests")),
            limits=_amounts((c.get("resources") or {}).get("limits")),
        )
        for c in spec.get("containers", [])
    )
    ooms = []
    for cs in status.get("containerStatuses", []):
        terminated = (cs.get("lastState") or {}).get("terminated") or {}
        if terminated.get("reason") == "OOMKilled" and terminated.get("finishedAt"):
            limit = next((c.limits.memory for c in containers if c.name == cs["name"]), None)
            ooms.append(
                OOMEvent(
                    container=cs["name"],
                    timestamp=rfc3339_to_unix(terminated["finishedAt"]),
                    memory=limit or 0.0,
                )
            )
    info = PodInfo(
        name=meta["name"],
        phase=status.get("phase", "Unknown"),
        ready=None if ready_cond is None else ready_cond.get("status") == "True",
        ready_transition_time=_maybe_time(ready_cond.get("lastTransitionTime")) if ready_cond else None,
        start_time=_maybe_time(status.get("startTime")),
        deleting=meta.get("deletionTimestamp") is not None,
        requests={c.name: c.requests for c in containers},
    )
    return PodSnapshot(
        info=info,
        uid=meta.get("uid", ""),
        labels=meta.get("labels") or {},
        created=_maybe_time(meta.get("creationTimestamp")) or 0.0,
        containers=containers,
        ooms=tuple(ooms),
    )


class PodSource:
    """A namespace's pods, listed once per `max_age` for all policies there and selected from a label index.

    Raw JSON: the client's model classes are slow to build for hundreds of pods.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._shared: SharedLister[LabelIndex[PodSnapshot]] = SharedLister(self._list_namespace)

    def _list(self, namespace: str) -> LabelIndex[PodSnapshot]:
        try:
            raw = request(self._api, "GET", f"/api/v1/namespaces/{namespace}/pods")
        except ApiException as exc:
            raise MetricUnavailable(
                "FailedGetPods", f"listing pods failed: {exc.status} {exc.reason}"
            ) from exc
        except Exception as exc:  # network errors from urllib3 and friends
            raise MetricUnavailable("FailedGetPods", f"API server unreachable: {exc}") from exc
        # Parsed and indexed here, in the worker thread, not on the event loop.
        return LabelIndex((parse_pod(item) for item in raw.get("items", [])), _pod_labels)

    async def _list_namespace(self, namespace: str) -> LabelIndex[PodSnapshot]:
        return await asyncio.to_thread(self._list, namespace)

    async def pods(
        self, namespace: str, selector: str, max_age: float = 0.0, stale_ok: float = 0.0
    ) -> list[PodSnapshot]:
        if not selector:
            # An empty selector would match every pod in the namespace: refuse rather than guess.
            raise MetricUnavailable(
                "InvalidSelector", "the target's /scale status has no selector; its pods cannot be found"
            )
        try:
            parsed = parse_selector(selector)
        except SelectorError as exc:
            raise MetricUnavailable("InvalidSelector", str(exc)) from exc
        return (await self._shared.get(namespace, max_age, stale_ok)).select(parsed)


def _pod_labels(pod: PodSnapshot) -> Mapping[str, str]:
    return pod.labels
