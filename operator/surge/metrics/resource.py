"""Pod CPU/memory usage from the metrics.k8s.io API (metrics-server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.quantity import parse_quantity
from surge.api.spec import ResourceAmounts
from surge.decision.model import PodUsage
from surge.kube import request
from surge.metrics.timeparse import go_duration_seconds, rfc3339_to_unix
from surge.metrics.types import MetricUnavailable

REASON = "FailedGetResourceMetric"


def parse_pod_metrics(item: dict[str, Any]) -> tuple[str, PodUsage]:
    containers = {
        c["name"]: ResourceAmounts(
            cpu=float(parse_quantity(c["usage"].get("cpu", "0"))),
            memory=float(parse_quantity(c["usage"].get("memory", "0"))),
        )
        for c in item.get("containers", [])
    }
    usage = PodUsage(
        timestamp=rfc3339_to_unix(item["timestamp"]),
        containers=containers,
        window=go_duration_seconds(item.get("window", "0s")),
    )
    return item["metadata"]["name"], usage


class PodMetricsSource:
    """Reads PodMetrics for a label selector; stale samples (older than `max_age`) count as missing."""

    def __init__(
        self, api: client.ApiClient, *, max_age: float = 180.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._api = api
        self._max_age = max_age
        self._clock = clock

    def _list(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        try:
            raw = request(
                self._api,
                "GET",
                f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                query={"labelSelector": selector},
            )
        except ApiException as exc:
            raise MetricUnavailable(REASON, f"metrics.k8s.io answered {exc.status}: {exc.reason}") from exc
        except Exception as exc:  # network errors from urllib3 and friends
            raise MetricUnavailable(REASON, f"metrics.k8s.io unreachable: {exc}") from exc
        items: list[dict[str, Any]] = raw.get("items", [])
        return items

    async def pod_usage(self, namespace: str, selector: str) -> dict[str, PodUsage]:
        """Usage per pod name; pods without a fresh sample are simply absent (the engine decides)."""
        items = await asyncio.to_thread(self._list, namespace, selector)
        now = self._clock()
        usage = {}
        for item in items:
            name, parsed = parse_pod_metrics(item)
            if now - parsed.timestamp <= self._max_age:
                usage[name] = parsed
        return usage
