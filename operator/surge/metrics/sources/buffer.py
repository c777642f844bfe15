"""Buffer metrics: used capacity, and the per-replica capacity when it comes from a query."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from surge.api.spec import BufferMetricSpec, MetricSpec
from surge.decision.model import BufferReading, MetricError, Reading
from surge.metrics.sources.base import Needs, PromQL, confined_to
from surge.metrics.types import MetricUnavailable, Sample


@dataclass(frozen=True, slots=True)
class BufferSource:
    prom: PromQL
    needs: ClassVar[Needs] = Needs()

    async def _query(self, query: str | None, namespace: str | None) -> Sample | MetricError | None:
        if query is None:
            return None
        try:
            return await self.prom.query(query, None, **confined_to(namespace))
        except MetricUnavailable as exc:
            return MetricError(exc.message)

    async def read(self, metric: MetricSpec, namespace: str | None = None) -> Reading | None:
        if not isinstance(metric, BufferMetricSpec):
            return MetricError(f"metric {metric.name} is not a Buffer metric")
        buf = metric.buffer
        used, capacity = await asyncio.gather(
            self._query(buf.used_query, namespace), self._query(buf.capacity_query, namespace)
        )
        if isinstance(used, MetricError):
            return used
        if isinstance(capacity, MetricError):
            return capacity
        assert used is not None  # used_query is required
        return BufferReading(
            used=used.value, capacity_per_replica=None if capacity is None else capacity.value
        )
