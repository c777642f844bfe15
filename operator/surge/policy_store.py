"""Reads and writes AutoScalePolicy objects (status through the /status subresource only)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from surge.kube import MERGE_PATCH, request

GROUP, VERSION, PLURAL = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicies"


class PolicyStore:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        # A merge patch on /status: lists (conditions, currentMetrics) are replaced whole, which is why
        # callers always send complete lists.
        request(
            self._api,
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
            body={"status": patch},
            content_type=MERGE_PATCH,
        )

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await asyncio.to_thread(self._patch_status, namespace, name, patch)
