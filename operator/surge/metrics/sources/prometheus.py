"""Prometheus metrics: one PromQL number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from surge.api.spec import MetricSpec
from surge.decision.model import MetricError, Reading, ScalarReading
from surge.metrics.sources.base import Needs, PromQL
from surge.metrics.types import MetricUnavailable


@dataclass(frozen=True, slots=True)
class PrometheusMetricSource:
    prom: PromQL
    needs: ClassVar[Needs] = Needs()

    async def read(self, metric: MetricSpec) -> Reading | None:
        if metric.prometheus is None:
            return MetricError(f"metric {metric.name} has no prometheus member")
        try:
            sample = await self.prom.query(metric.prometheus.query, metric.prometheus.server_address)
        except MetricUnavailable as exc:
            return MetricError(exc.message)
        return ScalarReading(sample.value)
