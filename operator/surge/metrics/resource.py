"""Pod CPU/memory usage from the metrics.k8s.io API (metrics-server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.quantity import parse_quantity
from surge.api.spec import ResourceAmounts
from surge.decision.model import PodUsage
from surge.kube import request
from surge.metrics.label_index import LabelIndex
from surge.metrics.selector import SelectorError, parse_selector
from surge.metrics.shared import SharedLister
from surge.metrics.timeparse import go_duration_seconds, rfc3339_to_unix
from surge.metrics.types import MetricUnavailable

REASON = "FailedGetResourceMetric"


Row = tuple[str, Mapping[str, str], PodUsage]  # pod name, its labels, its usage


def _row_labels(row: Row) -> Mapping[str, str]:
    return row[1]


def parse_pod_metrics(item: dict[str, Any]) -> Row:
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
    return item["metadata"]["name"], item["metadata"].get("labels") or {}, usage


class PodMetricsSource:
    """PodMetrics of a namespace, listed once per `max_age` for all policies there, selected by label.

    metrics-server copies the pods' labels onto PodMetrics, so the target's selector applies directly.
    Stale samples (older than `max_age_sample`) count as missing.
    """

    def __init__(
        self, api: client.ApiClient, *, max_age_sample: float = 180.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._api = api
        self._max_age_sample = max_age_sample
        self._clock = clock
        self._shared: SharedLister[LabelIndex[Row]] = SharedLister(self._list_namespace)

    def _list(self, namespace: str) -> LabelIndex[Row]:
        try:
            raw = request(self._api, "GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
        except ApiException as exc:
            raise MetricUnavailable(REASON, f"metrics.k8s.io answered {exc.status}: {exc.reason}") from exc
        except Exception as exc:  # network errors from urllib3 and friends
            raise MetricUnavailable(REASON, f"metrics.k8s.io unreachable: {exc}") from exc
        return LabelIndex((parse_pod_metrics(item) for item in raw.get("items", [])), _row_labels)

    async def _list_namespace(self, namespace: str) -> LabelIndex[Row]:
        return await asyncio.to_thread(self._list, namespace)

    async def pod_usage(
        self, namespace: str, selector: str, max_age: float = 0.0, stale_ok: float = 0.0
    ) -> dict[str, PodUsage]:
        """Usage per pod name; pods without a fresh sample are simply absent (the engine decides)."""
        try:
            parsed = parse_selector(selector)
        except SelectorError as exc:
            raise MetricUnavailable(REASON, str(exc)) from exc
        rows = (await self._shared.get(namespace, max_age, stale_ok)).select(parsed)
        now = self._clock()
        return {name: usage for name, _, usage in rows if now - usage.timestamp <= self._max_age_sample}
