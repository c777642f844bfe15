"""Finding any workload's /scale subresource through API discovery: no per-kind branches."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.errors import ReasonedError
from surge.kube import request


class TargetError(ReasonedError):
    """The scale target cannot be used."""


@dataclass(frozen=True, slots=True)
class TargetRef:
    api_version: str
    kind: str
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    ref: TargetRef
    path: str  # the object's URL path, e.g. /apis/apps/v1/namespaces/ns/deployments/web


@dataclass(frozen=True, slots=True)
class ScaleState:
    spec_replicas: int
    status_replicas: int
    selector: str  # label selector string from the Scale status ("" when the target publishes none)
    resource_version: str = ""  # of the Scale read; a write based on it carries it as a precondition


class Discovery:
    """kind -> plural resource per group/version, cached; thread-safe since calls run in executors."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, tuple[str, bool]]] = {}

    def _resources(self, api_version: str) -> dict[str, tuple[str, bool]]:
        with self._lock:
            if api_version in self._cache:
                return self._cache[api_version]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            listing = request(self._api, "GET", base)
        except ApiException as exc:
            raise TargetError(
                "FailedGetScale", f"API group version {api_version} not served ({exc.status})"
            ) from exc
        names = {r["name"] for r in listing.get("resources", [])}
        table = {
            r["kind"]: (r["name"], f"{r['name']}/scale" in names)
            for r in listing.get("resources", [])
            if "/" not in r["name"] and r.get("namespaced")
        }
        with self._lock:
            self._cache[api_version] = table
        return table

    def resolve(self, ref: TargetRef) -> ResolvedTarget:
        table = self._resources(ref.api_version)
        if ref.kind not in table:
            raise TargetError("FailedGetScale", f"{ref.api_version} has no namespaced kind {ref.kind}")
        plural, has_scale = table[ref.kind]
        if not has_scale:
            raise TargetError("FailedGetScale", f"{ref.kind} ({ref.api_version}) has no /scale subresource")
        base = "/api/v1" if ref.api_version == "v1" else f"/apis/{ref.api_version}"
        return ResolvedTarget(ref, f"{base}/namespaces/{ref.namespace}/{plural}/{ref.name}")

    def forget(self, api_version: str) -> None:
        """Drops a cached listing, e.g. after a CRD was installed or removed."""
        with self._lock:
            self._cache.pop(api_version, None)


def read_scale(api: client.ApiClient, target: ResolvedTarget) -> ScaleState:
    try:
        scale = request(api, "GET", target.path + "/scale")
    except ApiException as exc:
        if exc.status == 404:
            raise TargetError("FailedGetScale", f"{target.ref} not found in {target.ref.namespace}") from exc
        raise TargetError("FailedGetScale", f"reading {target.ref}/scale failed ({exc.status})") from exc
    return parse_scale(target, scale)


def parse_scale(target: ResolvedTarget, scale: Any) -> ScaleState:
    """An autoscaling/v1 Scale; anything else is reported, never raised as a stray TypeError."""
    try:
        spec, status = scale.get("spec") or {}, scale.get("status") or {}
        return ScaleState(
            spec_replicas=int(spec.get("replicas", 0)),
            status_replicas=int(status.get("replicas", 0)),
            selector=str(status.get("selector", "")),
            resource_version=str((scale.get("metadata") or {}).get("resourceVersion", "")),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise TargetError("FailedGetScale", f"{target.ref}/scale is not a Scale: {exc}") from exc


def read_object(api: client.ApiClient, target: ResolvedTarget) -> dict[str, Any]:
    obj: dict[str, Any] = request(api, "GET", target.path)
    return obj


class KubeTemplateReader:
    """The target's pod template (``spec.template.spec``) for any kind that has one."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _read(self, target: ResolvedTarget) -> dict[str, Any]:
        obj = read_object(self._api, target)
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        return dict(spec) if isinstance(spec, dict) else {}

    async def pod_template_spec(self, target: ResolvedTarget) -> dict[str, Any]:
        return await asyncio.to_thread(self._read, target)
