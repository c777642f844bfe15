"""Which policies exist in a namespace: the supervisor's safety net for deletions the watch never reported."""

from __future__ import annotations

import asyncio

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.kube import request
from surge.policy_store import GROUP, PLURAL, VERSION


class KubePolicyLister:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _uids(self, namespace: str) -> set[str] | None:
        try:
            listing = request(self._api, "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}")
        except ApiException as exc:
            if exc.status == 404:  # the namespace (or the CRD) is gone: so are its policies
                return set()
            return None
        return {str((item.get("metadata") or {}).get("uid")) for item in (listing or {}).get("items", [])}

    async def uids(self, namespace: str) -> set[str] | None:
        return await asyncio.to_thread(self._uids, namespace)
