"""Prometheus metrics: one PromQL number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from surge.api.spec import MetricSpec, PrometheusMetricSpec
from surge.decision.model import MetricError, Reading, ScalarReading
from surge.metrics.sources.base import Needs, PromQL, confined_to
from surge.metrics.types import MetricUnavailable


@dataclass(frozen=True, slots=True)
class PrometheusMetricSource:
    prom: PromQL
    needs: ClassVar[Needs] = Needs()

    async def read(self, metric: MetricSpec, namespace: str | None = None) -> Reading | None:
        if not isinstance(metric, PrometheusMetricSpec):
            return MetricError(f"metric {metric.name} is not a Prometheus metric")
        try:
            prom = metric.prometheus
            sample = await self.prom.query(prom.query, prom.server_address, **confined_to(namespace))
        except MetricUnavailable as exc:
            return MetricError(exc.message)
        return ScalarReading(sample.value)
