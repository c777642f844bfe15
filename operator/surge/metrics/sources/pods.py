"""HPA's Pods metric: a PromQL query returning one series per pod, keyed by its `pod` label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from surge.api.spec import MetricSpec, PodsMetricSpec
from surge.decision.model import MetricError, PodsReading, Reading
from surge.metrics.sources.base import Needs, PromQL, confined_to
from surge.metrics.types import MetricUnavailable


@dataclass(frozen=True, slots=True)
class PodsSource:
    prom: PromQL
    # The engine applies HPA's rules for missing, unready and Pending pods, so it needs the pods too.
    needs: ClassVar[Needs] = Needs(pods=True)

    async def read(self, metric: MetricSpec, namespace: str | None = None) -> Reading | None:
        if not isinstance(metric, PodsMetricSpec):
            return MetricError(f"metric {metric.name} is not a Pods metric")
        try:
            pods = metric.pods
            samples = await self.prom.query_by_pod(pods.query, pods.server_address, **confined_to(namespace))
        except MetricUnavailable as exc:
            return MetricError(exc.message)
        return PodsReading({pod: sample.value for pod, sample in samples.items()})
