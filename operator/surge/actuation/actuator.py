"""Writes to the target's pods and pod template: pod /resize and pod-template patches (/scale: scale.py).

`KubeActuator` talks to the API server; tests use the in-memory fake of the `Actuator` port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.actuation.target import ResolvedTarget, TargetError, read_object
from surge.kube import JSON_PATCH, STRATEGIC_MERGE_PATCH, request

# container name -> {"requests": {"cpu": "250m", ...}, "limits": {...}} (limits optional)
ContainerResources = Mapping[str, Mapping[str, Mapping[str, str]]]


class ActuationError(TargetError):
    """A write was refused; the reconcile loop reports it as a condition and an Event."""


def _containers_patch(resources: ContainerResources) -> list[dict[str, Any]]:
    return [{"name": name, "resources": dict(res)} for name, res in resources.items()]


class KubeActuator:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _resize_pod(self, namespace: str, pod: str, resources: ContainerResources) -> None:
        try:
            # The resize subresource changes requests/limits in place: same pod, same UID, no restart
            # (unless the container's resizePolicy asks for one).
            request(
                self._api,
                "PATCH",
                f"/api/v1/namespaces/{namespace}/pods/{pod}/resize",
                body={"spec": {"containers": _containers_patch(resources)}},
                content_type=STRATEGIC_MERGE_PATCH,
            )
        except ApiException as exc:
            raise ActuationError(
                "FailedResize", f"resizing pod {pod} failed: {exc.status} {_body(exc)}"
            ) from exc

    async def resize_pod(self, namespace: str, pod: str, resources: ContainerResources) -> None:
        await asyncio.to_thread(self._resize_pod, namespace, pod, resources)

    def _patch_template(self, target: ResolvedTarget, resources: ContainerResources) -> None:
        # A JSON patch by container index works for any kind whose spec.template is a PodTemplateSpec,
        # including custom resources where strategic merge is not available.
        obj = read_object(self._api, target)
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
        if not isinstance(containers, list):
            raise ActuationError("FailedUpdateTemplate", f"{target.ref} has no spec.template.spec.containers")
        ops: list[dict[str, Any]] = []
        for index, container in enumerate(containers):
            wanted = resources.get(container.get("name", ""))
            if wanted is None:
                continue
            current = dict(container.get("resources") or {})
            for kind, values in wanted.items():
                current[kind] = {**current.get(kind, {}), **values}
            ops.append(
                {"op": "add", "path": f"/spec/template/spec/containers/{index}/resources", "value": current}
            )
        if not ops:
            return
        # Guard against a concurrent edit reordering containers between our read and write.
        ops.insert(
            0,
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]},
        )
        try:
            request(self._api, "PATCH", target.path, body=ops, content_type=JSON_PATCH)
        except ApiException as exc:
            raise ActuationError(
                "FailedUpdateTemplate", f"patching {target.ref} template failed: {exc.status}"
            ) from exc

    async def patch_template(self, target: ResolvedTarget, resources: ContainerResources) -> None:
        await asyncio.to_thread(self._patch_template, target, resources)


def _body(exc: ApiException) -> str:
    text = str(exc.body or exc.reason)
    return text if len(text) < 400 else text[:400] + "..."
