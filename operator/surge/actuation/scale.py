"""The target's /scale subresource: resolve any kind through discovery, read it, write replicas.

Writes carry the resourceVersion of the Scale the decision was based on, so a change made meanwhile (a
user's `kubectl scale`, another controller) makes the API server answer 409 instead of being overwritten.
"""

from __future__ import annotations

import asyncio

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.actuation.actuator import ActuationError
from surge.actuation.target import Discovery, ResolvedTarget, ScaleState, TargetRef, read_scale
from surge.api import reasons
from surge.kube import MERGE_PATCH, request


class ScaleConflict(ActuationError):  # noqa: N818 - a conflict is an answer, not a bug
    """The Scale changed since it was read (409): re-read and decide again."""


def scale_patch(replicas: int, resource_version: str) -> dict[str, object]:
    body: dict[str, object] = {"spec": {"replicas": replicas}}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}  # a precondition, checked by the server
    return body


class KubeScaleClient:
    def __init__(self, api: client.ApiClient, discovery: Discovery | None = None) -> None:
        self._api = api
        self._discovery = discovery or Discovery(api)

    async def resolve(self, ref: TargetRef) -> ResolvedTarget:
        return await asyncio.to_thread(self._discovery.resolve, ref)

    async def read(self, target: ResolvedTarget) -> ScaleState:
        return await asyncio.to_thread(read_scale, self._api, target)

    def _write(self, target: ResolvedTarget, replicas: int, resource_version: str) -> None:
        try:
            request(
                self._api,
                "PATCH",
                target.path + "/scale",
                body=scale_patch(replicas, resource_version),
                content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise ScaleConflict(
                    reasons.FAILED_RESCALE, f"{target.ref}/scale changed since it was read (409)"
                ) from exc
            raise ActuationError(
                reasons.FAILED_RESCALE, f"patching {target.ref}/scale failed: {exc.status} {exc.reason}"
            ) from exc

    async def write(self, target: ResolvedTarget, replicas: int, resource_version: str) -> None:
        await asyncio.to_thread(self._write, target, replicas, resource_version)
