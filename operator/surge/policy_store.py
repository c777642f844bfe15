"""Writes AutoScalePolicy status through the /status subresource, never over a newer status."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.kube import MERGE_PATCH, request

GROUP, VERSION, PLURAL = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicies"


class StatusConflict(Exception):  # noqa: N818 - an answer of the server, not a bug
    """409: the policy changed since the tick read it; this write is skipped, the next tick rewrites."""


class PolicyGone(Exception):  # noqa: N818
    """404: the policy no longer exists; its loop should end."""


def status_body(patch: dict[str, Any], resource_version: str) -> dict[str, Any]:
    body: dict[str, Any] = {"status": patch}
    if resource_version:
        # A precondition: the server answers 409 instead of applying it over a newer object.
        body["metadata"] = {"resourceVersion": resource_version}
    return body


class PolicyStore:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _patch_status(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str) -> str:
        # A merge patch on /status: lists (conditions, currentMetrics) are replaced whole, which is why
        # callers always send complete lists.
        try:
            answer = request(
                self._api,
                "PATCH",
                f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
                body=status_body(patch, resource_version),
                content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise StatusConflict(f"{namespace}/{name} changed since it was read") from exc
            if exc.status == 404:
                raise PolicyGone(f"{namespace}/{name} no longer exists") from exc
            raise
        return str(((answer or {}).get("metadata") or {}).get("resourceVersion", ""))

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str = ""
    ) -> str:
        """Applies the patch if the policy is still at ``resource_version`` ("" = unconditionally).

        Returns the policy's new resourceVersion. Raises StatusConflict (409) or PolicyGone (404).
        """
        return await asyncio.to_thread(self._patch_status, namespace, name, patch, resource_version)
